package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/phone"
)

// maxRoles bounds the roles of one user, so that tokens stay small.
const maxRoles = 32

// ValidRole reports whether name can be a role: 1 to 32 ASCII letters,
// digits, '_', '-', '.' or ':'. ASCII only, so that no look-alike of a role
// can be granted by mistake, and no comma, which separates roles in
// X-Auth-Roles.
func ValidRole(name string) bool {
	if name == "" || len(name) > 32 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_' || c == '-' || c == '.' || c == ':':
		default:
			return false
		}
	}
	return true
}

// NormalizeRoles checks roles and returns them sorted without duplicates.
func NormalizeRoles(roles []string) ([]string, error) {
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if !ValidRole(r) {
			return nil, fmt.Errorf("role %q: want 1 to 32 ASCII letters, digits, '_', '-', '.' or ':'", r)
		}
		out = append(out, r)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > maxRoles {
		return nil, fmt.Errorf("at most %d roles", maxRoles)
	}
	return out, nil
}

// ParseUsers reads users lines: "+E164 role role", blank lines and
// # comments ignored. A phone listed twice gets the union of its roles.
func ParseUsers(r io.Reader) (map[string][]string, error) {
	out := make(map[string][]string)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if err := addUser(out, fields[0], fields[1:]); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// AddUser adds one listed phone with its roles to list, as a users line
// would; it is how the adapter checks inline entries.
func AddUser(list map[string][]string, number string, roles []string) error {
	return addUser(list, number, roles)
}

func addUser(list map[string][]string, number string, roles []string) error {
	num, err := phone.Parse(number)
	if err != nil || num.E164 != number {
		return fmt.Errorf("%q is not a phone number in E.164 form (+ and country code)", number)
	}
	all, err := NormalizeRoles(append(slices.Clone(list[num.E164]), roles...))
	if err != nil {
		return fmt.Errorf("%s: %w", number, err)
	}
	list[num.E164] = all
	return nil
}

// Roster is the `users` option: phones that may sign in under closed
// sign-up, with the roles the list gives them. Entries written in the
// config are fixed; a users file is re-read by Reload. Lookups are safe
// from any goroutine.
type Roster struct {
	inline map[string][]string
	file   string

	mu      sync.RWMutex
	entries map[string][]string
	fileSum [sha256.Size]byte
}

// NewRoster builds the roster from inline entries and an optional file,
// which must be readable now.
func NewRoster(inline map[string][]string, file string) (*Roster, error) {
	r := &Roster{inline: inline, file: file}
	if _, err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// File is the users file the roster follows ("" for none).
func (r *Roster) File() string {
	if r == nil {
		return ""
	}
	return r.file
}

// Lookup returns whether a phone is listed and the roles the list gives it.
// The slice is shared and must not be modified.
func (r *Roster) Lookup(e164 string) (roles []string, listed bool) {
	if r == nil {
		return nil, false
	}
	r.mu.RLock()
	roles, listed = r.entries[e164]
	r.mu.RUnlock()
	return roles, listed
}

// Len is the number of listed phones.
func (r *Roster) Len() int {
	if r == nil {
		return 0
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.entries)
}

// Reload re-reads the users file. It returns the phones whose access
// shrank (unlisted, or a role taken away). When the file cannot be read
// or parsed the last good list stays in force and the error is returned:
// a half-written file must not lock everyone out, nor let anyone in.
func (r *Roster) Reload() (lost []string, err error) {
	entries := make(map[string][]string, len(r.inline))
	for p, roles := range r.inline {
		entries[p] = roles
	}
	var sum [sha256.Size]byte
	if r.file != "" {
		b, err := os.ReadFile(r.file)
		if err != nil {
			return nil, fmt.Errorf("users file: %w", err)
		}
		sum = sha256.Sum256(b)
		r.mu.RLock()
		same := sum == r.fileSum && r.entries != nil
		r.mu.RUnlock()
		if same {
			return nil, nil
		}
		fromFile, err := ParseUsers(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("users file %s: %w", r.file, err)
		}
		for p, roles := range fromFile {
			all, err := NormalizeRoles(append(slices.Clone(entries[p]), roles...))
			if err != nil {
				return nil, fmt.Errorf("users file %s: %s: %w", r.file, p, err)
			}
			entries[p] = all
		}
	}
	r.mu.Lock()
	old := r.entries
	r.entries = entries
	r.fileSum = sum
	r.mu.Unlock()
	return Shrunk(old, entries), nil
}

// Shrunk lists the phones of old whose entry in cur is gone or lacks one of
// its roles, sorted.
func Shrunk(old, cur map[string][]string) []string {
	var out []string
	for p, roles := range old {
		now, ok := cur[p]
		if !ok {
			out = append(out, p)
			continue
		}
		for _, role := range roles {
			if !slices.Contains(now, role) {
				out = append(out, p)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// Entries returns a copy of the current list.
func (r *Roster) Entries() map[string][]string {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string][]string, len(r.entries))
	for p, roles := range r.entries {
		out[p] = roles
	}
	return out
}

// RosterChanged asks the gateway to re-read its users file now (another
// instance saw it change). It never blocks.
func (g *Gateway) RosterChanged() {
	select {
	case g.rosterCh <- struct{}{}:
	default:
	}
}

// MarkUnlisted makes the gate check again, in the store, the sessions of
// phones whose place on the users list shrank (the adapter calls it when a
// reloaded config lists fewer phones or roles than the one it replaces).
func (g *Gateway) MarkUnlisted(phones []string) {
	now := g.now()
	for _, p := range phones {
		g.changes.mark(p, now, now, g.revocationRetain())
	}
	if len(phones) > 0 {
		g.log.Info("users list: access of listed phones shrank", zap.Int("phones", len(phones)))
	}
}

// DistrustEarlierTokens makes the gate check in the store, once each, the
// tokens issued before now: for a gateway that starts in a fresh process
// with a users list, which cannot know whom an earlier process's list let
// in (a phone removed from the list across a restart).
func (g *Gateway) DistrustEarlierTokens() {
	g.changes.distrustBefore(g.now(), g.revocationRetain())
}

// followRoster re-reads the users file every RosterPoll, and at once when
// another instance announces that it changed; an instance that sees a change
// first announces it, so every instance sharing the file applies it within
// a feed delivery. It also prunes the change log.
func (g *Gateway) followRoster(ctx context.Context) {
	t := time.NewTicker(g.cfg.RosterPoll)
	defer t.Stop()
	for {
		fromFeed := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-g.rosterCh:
			fromFeed = true
		}
		g.changes.prune(g.now())
		if g.cfg.Roster.File() == "" {
			continue
		}
		lost, err := g.cfg.Roster.Reload()
		if err != nil {
			g.log.Error("users file unreadable; the last good list stays in force", zap.Error(err))
			continue
		}
		if len(lost) == 0 {
			continue
		}
		g.MarkUnlisted(lost)
		g.auditEvent("users_file_changed", zap.Int("phones_with_less_access", len(lost)))
		if !fromFeed {
			now := g.now()
			if err := g.cfg.Store.Announce(ctx, []string{rosterChange + strconv.FormatInt(now.UnixMilli(), 10)}, now); err != nil {
				g.log.Warn("users file change not announced to other instances", zap.Error(err))
			}
		}
	}
}
