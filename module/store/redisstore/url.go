package redisstore

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timeouts short enough that, with Redis down or unreachable, every call
// fails within about a second: the gateway answers 503 and fails closed
// instead of hanging. No retries, since a retried script could apply twice.
const (
	dialTimeout = 500 * time.Millisecond
	ioTimeout   = 500 * time.Millisecond
	poolTimeout = 600 * time.Millisecond
)

// ParseURL turns a store URL into client options for
// redis.NewUniversalClient:
//
//	redis://[[user]:pass@]host[:port][/db]           one server
//	rediss://...                                     the same over TLS
//	redis://[...@]h1:p1,h2:p2[?cluster=true]         a cluster (several hosts, or cluster=true)
//	redis-sentinel://[[user]:pass@]h1:p1,h2:p2[/db]?master=name[&sentinel_password=p]
//	rediss-sentinel://...                            the same over TLS
//
// Userinfo without a colon is a password (Redis AUTH with only a password).
// Credentials in the userinfo are those of the data nodes; sentinels that
// require their own password take sentinel_password. The default port is
// 6379, or 26379 for sentinels. Unknown query parameters are refused so a
// typo is not silently ignored.
func ParseURL(raw string) (*redis.UniversalOptions, error) {
	opts, err := parseURL(raw)
	if err != nil {
		// The URL may carry a password: name only the scheme.
		return nil, fmt.Errorf("redis url: %w", err)
	}
	return opts, nil
}

func parseURL(raw string) (*redis.UniversalOptions, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("missing scheme (want redis://, rediss://, redis-sentinel:// or rediss-sentinel://)")
	}
	var useTLS, sentinel bool
	switch scheme {
	case "redis":
	case "rediss":
		useTLS = true
	case "redis-sentinel":
		sentinel = true
	case "rediss-sentinel":
		useTLS, sentinel = true, true
	default:
		return nil, fmt.Errorf("unknown scheme %q", scheme)
	}

	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	pathPart, rawQuery, _ := strings.Cut(tail, "?")

	opts := &redis.UniversalOptions{
		DialTimeout:  dialTimeout,
		ReadTimeout:  ioTimeout,
		WriteTimeout: ioTimeout,
		PoolTimeout:  poolTimeout,
		MaxRetries:   -1, // go-redis: -1 means none, 0 means the default of 3
		// One dial per connection: the default of 5 dials, 100ms apart,
		// would turn an outage into seconds of waiting.
		DialerRetries: 1,
	}

	hostPart := authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		user, pass, err := parseUserinfo(authority[:i])
		if err != nil {
			return nil, err
		}
		opts.Username, opts.Password = user, pass
		hostPart = authority[i+1:]
	}

	defaultPort := "6379"
	if sentinel {
		defaultPort = "26379"
	}
	for _, h := range strings.Split(hostPart, ",") {
		addr, err := parseHost(h, defaultPort)
		if err != nil {
			return nil, err
		}
		opts.Addrs = append(opts.Addrs, addr)
	}

	switch p := strings.Trim(pathPart, "/"); {
	case p == "":
	case strings.Contains(p, "/"):
		return nil, fmt.Errorf("bad path %q: want /<db>", pathPart)
	default:
		db, err := strconv.Atoi(p)
		if err != nil || db < 0 {
			return nil, fmt.Errorf("bad database number %q", p)
		}
		opts.DB = db
	}

	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("bad query: %w", err)
	}
	cluster := len(opts.Addrs) > 1 && !sentinel
	for name, values := range q {
		if len(values) != 1 {
			return nil, fmt.Errorf("query parameter %q given %d times", name, len(values))
		}
		v := values[0]
		switch {
		case name == "cluster" && !sentinel:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("bad cluster=%q", v)
			}
			if !b && len(opts.Addrs) > 1 {
				return nil, fmt.Errorf("cluster=false with several hosts")
			}
			cluster = b
		case name == "master" && sentinel:
			if v == "" {
				return nil, fmt.Errorf("empty master name")
			}
			opts.MasterName = v
		case name == "sentinel_password" && sentinel:
			opts.SentinelPassword = v
		default:
			return nil, fmt.Errorf("unknown query parameter %q", name)
		}
	}

	if sentinel && opts.MasterName == "" {
		return nil, fmt.Errorf("sentinel url needs ?master=<name>")
	}
	if cluster {
		if opts.DB != 0 {
			return nil, fmt.Errorf("a cluster has only database 0")
		}
		opts.IsClusterMode = true
	}
	if useTLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if len(opts.Addrs) == 1 && !sentinel {
			opts.TLSConfig.ServerName, _, _ = net.SplitHostPort(opts.Addrs[0])
		}
	}
	return opts, nil
}

func parseUserinfo(s string) (user, pass string, err error) {
	u, p, hasColon := strings.Cut(s, ":")
	if !hasColon {
		u, p = "", s
	}
	if user, err = url.PathUnescape(u); err != nil {
		return "", "", fmt.Errorf("bad user name escape")
	}
	if pass, err = url.PathUnescape(p); err != nil {
		return "", "", fmt.Errorf("bad password escape")
	}
	return user, pass, nil
}

func parseHost(h, defaultPort string) (string, error) {
	if h == "" {
		return "", fmt.Errorf("empty host")
	}
	host, port := h, defaultPort
	if strings.HasPrefix(h, "[") || strings.Count(h, ":") == 1 {
		if hp, pp, err := net.SplitHostPort(h); err == nil {
			host, port = hp, pp
		} else if !strings.HasSuffix(h, "]") {
			return "", fmt.Errorf("bad host %q", h)
		} else {
			host = strings.Trim(h, "[]")
		}
	}
	if host == "" {
		return "", fmt.Errorf("empty host in %q", h)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("bad port in %q", h)
	}
	return net.JoinHostPort(host, port), nil
}
