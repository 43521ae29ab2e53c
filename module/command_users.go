package otpgate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "otpgate",
		Usage: "users list|add|show|sessions|set|ban|unban|delete|logout [...]",
		Short: "Manages otpgate's users through Caddy's admin endpoint",
		Long: `
Manages the users of a running otpgate, with either store, through the
admin.api.otpgate routes of Caddy's admin endpoint (/otpgate/users...).

The admin endpoint is --address if given, else the admin address of the
--config file, else localhost:2019 (as for caddy reload). A user is named
by its id or by its phone number (+E.164).

  caddy otpgate users list [--phone +E164] [--page N] [--per-page N]
  caddy otpgate users add +14155550123 --role admin --role ops [--confirm]
  caddy otpgate users show <id|+E164>
  caddy otpgate users sessions <id|+E164>
  caddy otpgate users set <id|+E164> --role ops      (replaces the roles; --no-roles clears them)
  caddy otpgate users ban <id|+E164>                 (ends every session)
  caddy otpgate users unban <id|+E164>
  caddy otpgate users delete <id|+E164>              (erases the user and its sessions)
  caddy otpgate users logout <id|+E164>              (ends every session)`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(usersCommand())
		},
	})
}

// usersCommand is `caddy otpgate users` and its subcommands.
func usersCommand() *cobra.Command {
	users := &cobra.Command{
		Use:   "users",
		Short: "Lists, invites, changes, bans and deletes users",
	}
	pf := users.PersistentFlags()
	pf.String("address", "", "Address of Caddy's admin endpoint (default: the admin address of --config, else localhost:2019)")
	pf.StringP("config", "c", "", "Configuration file whose admin address to use")
	pf.StringP("adapter", "a", "", "Name of the config adapter for --config")

	// run wraps a subcommand: flag and argument errors show the usage;
	// errors from the endpoint do not.
	run := func(f func(c *adminClient, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			c, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			return f(c, cmd, args)
		}
	}

	list := &cobra.Command{
		Use:   "list [--phone +E164] [--page N] [--per-page N]",
		Short: "Lists users, a page at a time",
		Args:  cobra.NoArgs,
		RunE: run(func(c *adminClient, cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			fl := cmd.Flags()
			if p, _ := fl.GetString("phone"); p != "" {
				q.Set("phone", p)
			}
			if fl.Changed("page") {
				n, _ := fl.GetInt("page")
				q.Set("page", strconv.Itoa(n))
			}
			if fl.Changed("per-page") {
				n, _ := fl.GetInt("per-page")
				q.Set("per_page", strconv.Itoa(n))
			}
			uri := adminBase + "/users"
			if len(q) > 0 {
				uri += "?" + q.Encode()
			}
			return c.printJSON(http.MethodGet, uri, nil)
		}),
	}
	list.Flags().String("phone", "", "Only the user of this phone (+E.164)")
	list.Flags().Int("page", 1, "Page number, from 1")
	list.Flags().Int("per-page", 50, "Users per page (1 to 1000)")

	add := &cobra.Command{
		Use:   "add <+E164> [--role r]... [--confirm]",
		Short: "Creates a user (an invitation: the phone may then sign in even under signup closed)",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(c *adminClient, cmd *cobra.Command, args []string) error {
			body := map[string]any{"phone": args[0]}
			fl := cmd.Flags()
			if fl.Changed("role") {
				roles, _ := fl.GetStringArray("role")
				body["roles"] = roles
			}
			if ok, _ := fl.GetBool("confirm"); ok {
				body["phone_confirm"] = true
			}
			if m, _ := fl.GetString("metadata"); m != "" {
				if !json.Valid([]byte(m)) {
					return fmt.Errorf("--metadata: not valid JSON")
				}
				body["user_metadata"] = json.RawMessage(m)
			}
			return c.printJSON(http.MethodPost, adminBase+"/users", body)
		}),
	}
	add.Flags().StringArray("role", nil, "A role to give the user (repeat for more)")
	add.Flags().Bool("confirm", false, "Mark the phone as confirmed")
	add.Flags().String("metadata", "", `user_metadata as a JSON object, e.g. '{"name":"Ada"}'`)

	show := &cobra.Command{
		Use:   "show <id|+E164>",
		Short: "Shows a user, with its roles and ban",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(c *adminClient, _ *cobra.Command, args []string) error {
			id, err := c.resolve(args[0])
			if err != nil {
				return err
			}
			return c.printJSON(http.MethodGet, userPath(id), nil)
		}),
	}

	sessions := &cobra.Command{
		Use:   "sessions <id|+E164>",
		Short: "Lists a user's active sessions",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(c *adminClient, _ *cobra.Command, args []string) error {
			id, err := c.resolve(args[0])
			if err != nil {
				return err
			}
			return c.printJSON(http.MethodGet, userPath(id)+"/sessions", nil)
		}),
	}

	set := &cobra.Command{
		Use:   "set <id|+E164> (--role r... | --no-roles)",
		Short: "Replaces a user's roles",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(c *adminClient, cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			none, _ := fl.GetBool("no-roles")
			roles, _ := fl.GetStringArray("role")
			switch {
			case none && len(roles) > 0:
				return errors.New("give --role or --no-roles, not both")
			case !none && len(roles) == 0:
				return errors.New("give the new roles with --role (repeat for more), or --no-roles to clear them")
			}
			if roles == nil {
				roles = []string{}
			}
			id, err := c.resolve(args[0])
			if err != nil {
				return err
			}
			return c.printJSON(http.MethodPatch, userPath(id), map[string]any{"roles": roles})
		}),
	}
	set.Flags().StringArray("role", nil, "A role the user will hold (repeat for more)")
	set.Flags().Bool("no-roles", false, "Take every role away")

	banned := func(ban bool) func(c *adminClient, _ *cobra.Command, args []string) error {
		return func(c *adminClient, _ *cobra.Command, args []string) error {
			id, err := c.resolve(args[0])
			if err != nil {
				return err
			}
			return c.printJSON(http.MethodPatch, userPath(id), map[string]any{"banned": ban})
		}
	}
	ban := &cobra.Command{
		Use:   "ban <id|+E164>",
		Short: "Bans a user: no code is sent to it, and every session ends",
		Args:  cobra.ExactArgs(1),
		RunE:  run(banned(true)),
	}
	unban := &cobra.Command{
		Use:   "unban <id|+E164>",
		Short: "Lifts a user's ban",
		Args:  cobra.ExactArgs(1),
		RunE:  run(banned(false)),
	}

	del := &cobra.Command{
		Use:   "delete <id|+E164>",
		Short: "Erases a user and every record of it (sessions end everywhere)",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(c *adminClient, cmd *cobra.Command, args []string) error {
			id, err := c.resolve(args[0])
			if err != nil {
				return err
			}
			if _, err := c.call(http.MethodDelete, userPath(id), nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "otpgate: user %s deleted\n", id)
			return nil
		}),
	}

	logout := &cobra.Command{
		Use:   "logout <id|+E164>",
		Short: "Ends every session of a user, everywhere",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(c *adminClient, cmd *cobra.Command, args []string) error {
			id, err := c.resolve(args[0])
			if err != nil {
				return err
			}
			if _, err := c.call(http.MethodDelete, userPath(id)+"/sessions", nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "otpgate: every session of user %s ended\n", id)
			return nil
		}),
	}

	users.AddCommand(list, add, show, sessions, set, ban, unban, del, logout)
	return users
}

func userPath(id string) string { return adminBase + "/users/" + url.PathEscape(id) }

// adminClient talks to Caddy's admin endpoint, as `caddy reload` does:
// TCP with the Origin header the endpoint expects, or a unix socket.
type adminClient struct {
	addr    string
	network string
	dial    string // address to dial
	origin  string
	out     io.Writer
	http    *http.Client
}

func newAdminClient(cmd *cobra.Command) (*adminClient, error) {
	fl := cmd.Flags()
	address, _ := fl.GetString("address")
	config, _ := fl.GetString("config")
	adapter, _ := fl.GetString("adapter")
	addr, err := caddycmd.DetermineAdminAPIAddress(address, nil, config, adapter)
	if err != nil {
		return nil, fmt.Errorf("finding the admin endpoint: %w", err)
	}
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil || na.PortRangeSize() > 1 {
		return nil, fmt.Errorf("invalid admin address %s: %v", addr, err)
	}
	c := &adminClient{addr: addr, network: na.Network, out: cmd.OutOrStdout()}
	switch {
	case na.IsUnixNetwork():
		// a bogus host keeps net/http happy; the socket's permission
		// bits ("|0200") are not part of its path
		c.origin = "http://127.0.0.1"
		c.dial, _, _ = strings.Cut(na.Host, "|")
	case na.IsFdNetwork():
		return nil, fmt.Errorf("admin address %s: a file descriptor cannot be dialled; give --address", addr)
	default:
		c.origin = "http://" + na.JoinHostPort(0)
		c.dial = na.JoinHostPort(0)
	}
	c.http = &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, c.network, c.dial)
			},
		},
	}
	return c, nil
}

// call sends one request; any answer other than 2xx is an error with the
// endpoint's own message.
func (c *adminClient) call(method, uri string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.origin+uri, rd)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(c.network, "unix") {
		req.Header.Set("Origin", c.origin)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "caddy otpgate users")
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin endpoint %s: %w", c.addr, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("admin endpoint %s: reading the answer: %w", c.addr, err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, errorFromAnswer(res.StatusCode, out)
	}
	return out, nil
}

// errorFromAnswer turns an error answer into the message to show: otpgate's
// JSON errors ({"code", "error_code", "msg"}) or Caddy's ({"error"}).
func errorFromAnswer(status int, body []byte) error {
	var e struct {
		ErrorCode string `json:"error_code"`
		Msg       string `json:"msg"`
		Message   string `json:"message"`
		Error     string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil {
		msg := e.Msg
		if msg == "" {
			msg = e.Message
		}
		if msg == "" {
			msg = e.Error
		}
		if msg != "" {
			if e.ErrorCode != "" {
				return fmt.Errorf("HTTP %d %s: %s", status, e.ErrorCode, msg)
			}
			return fmt.Errorf("HTTP %d: %s", status, msg)
		}
	}
	text := strings.TrimSpace(string(body))
	if text == "" {
		text = http.StatusText(status)
	}
	return fmt.Errorf("HTTP %d: %s", status, text)
}

// printJSON calls the endpoint and prints its JSON answer indented.
func (c *adminClient) printJSON(method, uri string, body any) error {
	out, err := c.call(method, uri, body)
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, out, "", "  "); err != nil {
		pretty.Reset()
		pretty.Write(out)
	}
	pretty.WriteByte('\n')
	_, err = c.out.Write(pretty.Bytes())
	return err
}

// resolve turns a phone number into the id of its user; anything else is
// taken as an id.
func (c *adminClient) resolve(arg string) (string, error) {
	if !looksLikePhone(arg) {
		return arg, nil
	}
	out, err := c.call(http.MethodGet, adminBase+"/users?phone="+url.QueryEscape(arg), nil)
	if err != nil {
		return "", err
	}
	var res struct {
		Users []struct {
			ID string `json:"id"`
		} `json:"users"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return "", fmt.Errorf("admin endpoint %s: unexpected answer: %w", c.addr, err)
	}
	if len(res.Users) == 0 || res.Users[0].ID == "" {
		return "", fmt.Errorf("no user has the phone %s", arg)
	}
	return res.Users[0].ID, nil
}

// looksLikePhone: "+" then digits, or digits only (the GoTrue form). User
// ids are UUIDs, which always hold a '-'.
func looksLikePhone(s string) bool {
	s = strings.TrimPrefix(strings.TrimSpace(s), "+")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
