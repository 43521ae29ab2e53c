package gateway

import "net/http"

// Identity is who the gate let through.
type Identity struct {
	UserID    string
	Phone     string
	SessionID string
	Roles     []string
	// RolesList is Roles comma-separated, as X-Auth-Roles and the
	// {http.auth.user.roles} placeholder carry them (joined once).
	RolesList string
}

// Headers the gate owns: incoming copies are always removed.
const (
	HeaderUserID    = "X-Auth-User-Id"
	HeaderPhone     = "X-Auth-Phone"
	HeaderSessionID = "X-Auth-Session-Id"
	HeaderRoles     = "X-Auth-Roles"
)

// stripIdentityHeaders removes every spelling of the owned headers: case
// is canonicalised by net/http, but X_Auth_User_Id survives that and some
// upstreams (CGI, PHP, WSGI) read it as the same variable. It runs on
// every request, so it compares in place instead of allocating.
func stripIdentityHeaders(h http.Header) {
	for name := range h {
		if isOwnedHeader(name) {
			delete(h, name)
		}
	}
}

var ownedHeaders = [...]string{"x-auth-user-id", "x-auth-phone", "x-auth-session-id", "x-auth-roles"}

func isOwnedHeader(name string) bool {
	if len(name) < len("x-auth-phone") || (name[0] != 'x' && name[0] != 'X') {
		return false
	}
	for _, owned := range ownedHeaders {
		if len(owned) != len(name) {
			continue
		}
		match := true
		for i := 0; i < len(name); i++ {
			c := name[i]
			if c == '_' {
				c = '-'
			} else if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != owned[i] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
