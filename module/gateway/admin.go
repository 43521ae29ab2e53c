package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/phone"
	"github.com/otpgate/otpgate/module/store"
)

// Administration: the user operations behind Caddy's admin endpoint
// (/otpgate/users...), the `caddy otpgate users` command (which calls that
// endpoint) and the Supabase admin routes under the API prefix (for
// GoTrueAdminApi, with the service key). One implementation serves both
// dialects; they differ only where Supabase's shapes require it.

// AdminDialect selects the shapes of the admin routes.
type AdminDialect int

const (
	// DialectOtpgate: Caddy's admin endpoint; DELETE answers 204.
	DialectOtpgate AdminDialect = iota
	// DialectSupabase: GoTrue's /admin routes; DELETE answers the user.
	DialectSupabase
)

// foreverBan is how long "banned: true" bans: GoTrue's usual "876000h".
const foreverBan = 876000 * time.Hour

const (
	defaultPerPage = 50
	maxPerPage     = 1000
)

// adminUser is the user object of the admin routes: the API user object
// with app_metadata.roles and banned_until.
type adminUser = userJSON

type sessionInfo struct {
	ID          string     `json:"id"`
	CreatedAt   time.Time  `json:"created_at"`
	RefreshedAt *time.Time `json:"refreshed_at"`
	IP          string     `json:"ip"`
	UserAgent   string     `json:"user_agent"`
}

// adminUserRequest is the body of a create or an update, in either
// dialect: otpgate's roles/banned, or Supabase's app_metadata.roles and
// ban_duration.
type adminUserRequest struct {
	Phone        string          `json:"phone"`
	PhoneConfirm *bool           `json:"phone_confirm"`
	Roles        *[]string       `json:"roles"`
	Banned       *bool           `json:"banned"`
	BanDuration  *string         `json:"ban_duration"`
	UserMetadata json.RawMessage `json:"user_metadata"`
	AppMetadata  *struct {
		Roles *[]string `json:"roles"`
	} `json:"app_metadata"`
}

// ServeAdmin serves one admin route; route is the path after the routes'
// base (e.g. "/users/<id>/sessions").
func (g *Gateway) ServeAdmin(w http.ResponseWriter, r *http.Request, route string, dialect AdminDialect, actor Actor) {
	if err := g.serveAdmin(w, r, route, dialect, actor); err != nil {
		e := apierr.As(err)
		if e.Status >= 500 {
			g.log.Error("admin route failed", zap.String("route", route), zap.String("error_code", e.Code), zap.Error(e.Err))
		}
		apierr.Write(w, r, e)
	}
}

func (g *Gateway) serveAdmin(w http.ResponseWriter, r *http.Request, route string, dialect AdminDialect, actor Actor) error {
	parts := strings.Split(strings.Trim(route, "/"), "/")
	if len(parts) == 0 || parts[0] != "users" || len(parts) > 3 {
		return apierr.New(http.StatusNotFound, apierr.NotFound, "No such admin route.")
	}
	ctx := r.Context()
	switch len(parts) {
	case 1:
		switch r.Method {
		case http.MethodGet:
			return g.adminList(w, r, dialect)
		case http.MethodPost:
			var req adminUserRequest
			if err := decodeBody(r, &req); err != nil {
				return err
			}
			u, err := g.AdminCreateUser(ctx, req, actor)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusCreated, u)
			return nil
		}
		return methodNotAllowed(w, "GET, POST")
	case 2:
		id := parts[1]
		switch r.Method {
		case http.MethodGet:
			e, err := g.adminFind(ctx, id)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, g.userJSON(e.User))
			return nil
		case http.MethodPatch, http.MethodPut:
			var req adminUserRequest
			if err := decodeBody(r, &req); err != nil {
				return err
			}
			u, err := g.AdminUpdateUser(ctx, id, req, actor)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, u)
			return nil
		case http.MethodDelete:
			// GoTrue's deleteUser sends {"should_soft_delete": bool}; the
			// erasure is always complete here, so the body is not needed.
			u, err := g.AdminDeleteUser(ctx, id, actor)
			if err != nil {
				return err
			}
			if dialect == DialectSupabase {
				writeJSON(w, http.StatusOK, u)
				return nil
			}
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		return methodNotAllowed(w, "GET, PATCH, PUT, DELETE")
	default:
		if parts[2] != "sessions" {
			return apierr.New(http.StatusNotFound, apierr.NotFound, "No such admin route.")
		}
		switch r.Method {
		case http.MethodGet:
			list, err := g.AdminSessions(ctx, parts[1])
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, map[string]any{"sessions": list})
			return nil
		case http.MethodDelete:
			if err := g.AdminLogout(ctx, parts[1], actor); err != nil {
				return err
			}
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		return methodNotAllowed(w, "GET, DELETE")
	}
}

func (g *Gateway) adminList(w http.ResponseWriter, r *http.Request, dialect AdminDialect) error {
	q := r.URL.Query()
	page, err := queryInt(q.Get("page"), 1)
	if err != nil || page < 1 {
		return apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "page must be a positive integer.")
	}
	perPage, err := queryInt(q.Get("per_page"), defaultPerPage)
	if err != nil || perPage < 1 || perPage > maxPerPage {
		return apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "per_page must be an integer from 1 to 1000.")
	}
	users, total, err := g.AdminListUsers(r.Context(), q.Get("phone"), page, perPage)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("X-Total-Count", strconv.Itoa(total))
	// GoTrue's pagination links, which GoTrueAdminApi.listUsers reads
	last := max(1, (total+perPage-1)/perPage)
	var links []string
	if page < last {
		links = append(links, `</admin/users?page=`+strconv.Itoa(page+1)+`&per_page=`+strconv.Itoa(perPage)+`>; rel="next"`)
	}
	links = append(links, `</admin/users?page=`+strconv.Itoa(last)+`&per_page=`+strconv.Itoa(perPage)+`>; rel="last"`)
	h.Set("Link", strings.Join(links, ", "))
	writeJSON(w, http.StatusOK, map[string]any{"users": users, "total": total, "aud": g.cfg.Audience})
	return nil
}

func queryInt(v string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	return strconv.Atoi(v)
}

// AdminListUsers lists users page by page (page from 1), or the one user of
// a phone when phone is given.
func (g *Gateway) AdminListUsers(ctx context.Context, phoneFilter string, page, perPage int) ([]adminUser, int, error) {
	users := []adminUser{}
	if phoneFilter != "" {
		num, err := parseAdminPhone(phoneFilter)
		if err != nil {
			return nil, 0, err
		}
		u, ok, err := g.cfg.Store.User(ctx, g.userKey(num.E164))
		if err != nil {
			return nil, 0, storeError(err)
		}
		if ok {
			users = append(users, g.userJSON(u))
		}
		return users, len(users), nil
	}
	entries, total, err := g.cfg.Store.ListUsers(ctx, (page-1)*perPage, perPage)
	if err != nil {
		return nil, 0, storeError(err)
	}
	for _, e := range entries {
		users = append(users, g.userJSON(e.User))
	}
	return users, total, nil
}

// AdminCreateUser invites a user: the phone may then sign in even under
// closed sign-up. The phone counts as confirmed only with phone_confirm.
func (g *Gateway) AdminCreateUser(ctx context.Context, req adminUserRequest, actor Actor) (adminUser, error) {
	if strings.TrimSpace(req.Phone) == "" {
		return adminUser{}, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "phone is required.")
	}
	num, err := parseAdminPhone(req.Phone)
	if err != nil {
		return adminUser{}, err
	}
	if err := g.cfg.Policy.Allow(num); err != nil {
		return adminUser{}, phoneError(err)
	}
	now := g.now()
	upd, err := g.adminUpdate(req, now)
	if err != nil {
		return adminUser{}, err
	}
	create := store.CreateUserRequest{
		User:      g.userKey(num.E164),
		ID:        newUserID(),
		Phone:     num.E164,
		Now:       now,
		Confirmed: req.PhoneConfirm != nil && *req.PhoneConfirm,
	}
	if upd.Roles != nil {
		create.Roles = *upd.Roles
	}
	if upd.Metadata != nil {
		create.Metadata = *upd.Metadata
	}
	u, created, err := g.cfg.Store.CreateUser(ctx, create)
	if err != nil {
		return adminUser{}, storeError(err)
	}
	if !created {
		return adminUser{}, apierr.New(http.StatusUnprocessableEntity, apierr.PhoneExists, "A user with this phone number has already been registered.")
	}
	if upd.BannedUntil != nil {
		if u, _, err = g.cfg.Store.UpdateUser(ctx, create.User, store.UserUpdate{Now: now, BannedUntil: upd.BannedUntil}); err != nil {
			return adminUser{}, storeError(err)
		}
	}
	g.auditEvent("admin_user_created", append(auditFields(actor, u.ID, "", u.Phone), zap.Strings("roles", u.Roles))...)
	return g.userJSON(u), nil
}

// adminUpdate turns a request body into a store update, refusing bad input
// before anything is changed.
func (g *Gateway) adminUpdate(req adminUserRequest, now time.Time) (store.UserUpdate, error) {
	upd := store.UserUpdate{Now: now}
	roles := req.Roles
	if req.AppMetadata != nil && req.AppMetadata.Roles != nil {
		if roles != nil {
			return upd, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "Give roles or app_metadata.roles, not both.")
		}
		roles = req.AppMetadata.Roles
	}
	if roles != nil {
		norm, err := NormalizeRoles(*roles)
		if err != nil {
			return upd, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, err.Error()+".")
		}
		upd.Roles = &norm
	}
	if req.Banned != nil && req.BanDuration != nil {
		return upd, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "Give banned or ban_duration, not both.")
	}
	if req.Banned != nil {
		until := time.Time{}
		if *req.Banned {
			until = now.Add(foreverBan)
		}
		upd.BannedUntil = &until
	}
	if req.BanDuration != nil {
		until := time.Time{}
		if *req.BanDuration != "none" {
			d, err := time.ParseDuration(*req.BanDuration)
			if err != nil || d <= 0 {
				return upd, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, `ban_duration must be a positive duration such as "24h", or "none".`)
			}
			until = now.Add(d)
		}
		upd.BannedUntil = &until
	}
	if len(req.UserMetadata) > 0 && string(req.UserMetadata) != "null" {
		if len(req.UserMetadata) > maxMetadata {
			return upd, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "user_metadata must be at most 4 KiB.")
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(req.UserMetadata, &obj) != nil || obj == nil {
			return upd, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "user_metadata must be a JSON object.")
		}
		meta := []byte(req.UserMetadata)
		upd.Metadata = &meta
	}
	return upd, nil
}

// mergeMetadata applies a GoTrue-style update to user metadata: top-level
// keys are set, a key given as null is removed.
func mergeMetadata(old, patch []byte) ([]byte, error) {
	cur := map[string]json.RawMessage{}
	if len(old) > 0 {
		if err := json.Unmarshal(old, &cur); err != nil || cur == nil {
			cur = map[string]json.RawMessage{}
		}
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, err
	}
	for k, v := range p {
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			delete(cur, k)
			continue
		}
		cur[k] = v
	}
	if len(cur) == 0 {
		return nil, nil
	}
	return json.Marshal(cur)
}

// AdminUpdateUser changes roles, ban and metadata. Taking access away (a
// ban, a role removed) reaches every instance through the feed at once;
// a ban also ends every session.
func (g *Gateway) AdminUpdateUser(ctx context.Context, id string, req adminUserRequest, actor Actor) (adminUser, error) {
	if req.Phone != "" {
		return adminUser{}, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "The phone of a user cannot be changed here.")
	}
	now := g.now()
	upd, err := g.adminUpdate(req, now)
	if err != nil {
		return adminUser{}, err
	}
	e, err := g.adminFind(ctx, id)
	if err != nil {
		return adminUser{}, err
	}
	if upd.Metadata != nil {
		merged, err := mergeMetadata(e.User.Metadata, *upd.Metadata)
		if err != nil {
			return adminUser{}, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "user_metadata must be a JSON object.")
		}
		if len(merged) > maxMetadata {
			return adminUser{}, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "user_metadata must be at most 4 KiB in all.")
		}
		upd.Metadata = &merged
	}
	u, found, err := g.cfg.Store.UpdateUser(ctx, e.Key, upd)
	if err != nil {
		return adminUser{}, storeError(err)
	}
	if !found {
		return adminUser{}, errUserNotFound()
	}
	fields := auditFields(actor, u.ID, "", u.Phone)
	lost := upd.Roles != nil && lostRole(e.User.Roles, *upd.Roles)
	if upd.Roles != nil {
		g.auditEvent("role_change", append(fields, zap.Strings("roles_before", e.User.Roles), zap.Strings("roles", u.Roles))...)
	}
	banned := upd.BannedUntil != nil && u.Banned(now)
	if lost || banned {
		// first, so that every gate checks the user again even if ending
		// the sessions below fails
		g.announceUserChange(ctx, u.ID, now)
	}
	if upd.Metadata != nil {
		g.auditEvent("admin_user_updated", append(fields, zap.String("changed", "user_metadata"))...)
	}
	switch {
	case banned:
		g.auditEvent("ban", append(fields, zap.Time("banned_until", u.BannedUntil))...)
		ids, err := g.cfg.Store.Revoke(ctx, e.Key, store.RevokeAll, "", now)
		g.cache.Revoke(ids, now.Add(g.revocationRetain()))
		if err != nil {
			if len(ids) == 0 {
				g.repairLater(e.Key) // the revoke may have run with its reply lost
				return adminUser{}, storeError(err)
			}
			g.announce(ctx, ids, now)
		}
	case upd.BannedUntil != nil:
		g.auditEvent("unban", fields...)
	}
	return g.userJSON(u), nil
}

// lostRole reports whether a role of old is missing from cur.
func lostRole(old, cur []string) bool {
	for _, r := range old {
		found := false
		for _, c := range cur {
			if c == r {
				found = true
				break
			}
		}
		if !found {
			return true
		}
	}
	return false
}

// announceUserChange tells every instance (this one at once) that the
// user's access may have shrunk, so that their cached tokens are checked in
// the store again.
func (g *Gateway) announceUserChange(ctx context.Context, userID string, now time.Time) {
	g.changes.mark(userID, now, now, g.revocationRetain())
	g.announce(ctx, []string{userChangeID(userID, now)}, now)
}

// AdminDeleteUser erases a user and every record of it but its opt-out;
// its sessions are refused everywhere at once.
func (g *Gateway) AdminDeleteUser(ctx context.Context, id string, actor Actor) (adminUser, error) {
	e, err := g.adminFind(ctx, id)
	if err != nil {
		return adminUser{}, err
	}
	now := g.now()
	u, ids, found, err := g.cfg.Store.DeleteUser(ctx, e.Key, now)
	if err != nil {
		// the deletion may have run with its reply lost: have every
		// instance check this user's tokens in the store again
		g.announceUserChange(ctx, e.User.ID, now)
		return adminUser{}, storeError(err)
	}
	if !found {
		return adminUser{}, errUserNotFound()
	}
	g.cache.Revoke(ids, now.Add(g.revocationRetain()))
	g.announce(ctx, ids, now)
	g.announceUserChange(ctx, u.ID, now)
	g.auditEvent("user_deleted", append(auditFields(actor, u.ID, "", u.Phone), zap.Strings("revoked_sessions", ids))...)
	return g.userJSON(u), nil
}

// AdminSessions lists a user's active sessions.
func (g *Gateway) AdminSessions(ctx context.Context, id string) ([]sessionInfo, error) {
	e, err := g.adminFind(ctx, id)
	if err != nil {
		return nil, err
	}
	list, err := g.cfg.Store.Sessions(ctx, e.Key, g.now())
	if err != nil {
		return nil, storeError(err)
	}
	out := make([]sessionInfo, 0, len(list))
	for _, s := range list {
		info := sessionInfo{ID: s.ID, CreatedAt: s.CreatedAt.UTC(), IP: s.IP, UserAgent: s.UserAgent}
		if !s.RefreshedAt.IsZero() {
			t := s.RefreshedAt.UTC()
			info.RefreshedAt = &t
		}
		out = append(out, info)
	}
	return out, nil
}

// AdminLogout ends every session of a user, everywhere.
func (g *Gateway) AdminLogout(ctx context.Context, id string, actor Actor) error {
	e, err := g.adminFind(ctx, id)
	if err != nil {
		return err
	}
	now := g.now()
	ids, err := g.cfg.Store.Revoke(ctx, e.Key, store.RevokeAll, "", now)
	g.cache.Revoke(ids, now.Add(g.revocationRetain()))
	if err != nil {
		if len(ids) == 0 {
			g.repairLater(e.Key) // the revoke may have run with its reply lost
			return storeError(err)
		}
		g.announce(ctx, ids, now)
	}
	g.auditEvent("admin_sign_out", append(auditFields(actor, e.User.ID, "", e.User.Phone), zap.Strings("revoked_sessions", ids))...)
	return nil
}

func (g *Gateway) adminFind(ctx context.Context, id string) (store.UserEntry, error) {
	if !validUserID(id) {
		return store.UserEntry{}, apierr.New(http.StatusBadRequest, apierr.ValidationFailed, "The user id must be a UUID.")
	}
	e, ok, err := g.cfg.Store.UserByID(ctx, id)
	if err != nil {
		return store.UserEntry{}, storeError(err)
	}
	if !ok {
		return store.UserEntry{}, errUserNotFound()
	}
	return e, nil
}

// validUserID accepts a UUID in its canonical lower-case form only, so that
// index lookups cannot be steered by crafted ids.
func validUserID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

func errUserNotFound() *apierr.Error {
	return apierr.New(http.StatusNotFound, apierr.UserNotFound, "User not found.")
}

// parseAdminPhone accepts E.164, with or without the '+' (GoTrue's form).
func parseAdminPhone(s string) (phone.Number, error) {
	num, err := parsePhone(s)
	if err != nil {
		return num, phoneError(err)
	}
	return num, nil
}

// serveSupabaseAdmin serves GoTrue's admin routes under the API prefix for
// requests that carry the service key. Without a service key configured
// the routes do not exist.
func (g *Gateway) serveSupabaseAdmin(w http.ResponseWriter, r *http.Request, route, clientIP string) error {
	key := g.cfg.ServiceKey
	if key == "" {
		return apierr.New(http.StatusNotFound, apierr.NotFound, "No such auth route.")
	}
	tok := bearerToken(r)
	if tok == "" {
		return apierr.New(http.StatusUnauthorized, apierr.NoAuthorization, "This endpoint requires the service key as a bearer token.")
	}
	// compare digests: constant time, and the length of the key is not
	// revealed either
	a, b := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(key))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return apierr.New(http.StatusForbidden, "not_admin", "The bearer token is not the service key.")
	}
	g.ServeAdmin(w, r, route, DialectSupabase, actorOf(r, clientIP, "service_key"))
	return nil
}
