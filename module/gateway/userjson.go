package gateway

import (
	"time"

	"github.com/otpgate/otpgate/module/session"
	"github.com/otpgate/otpgate/module/store"
)

// userJSON is the Supabase user object.
type userJSON struct {
	ID               string         `json:"id"`
	Aud              string         `json:"aud"`
	Role             string         `json:"role"`
	Email            string         `json:"email"`
	Phone            string         `json:"phone"`
	PhoneConfirmedAt *time.Time     `json:"phone_confirmed_at,omitempty"`
	ConfirmedAt      *time.Time     `json:"confirmed_at,omitempty"`
	LastSignInAt     *time.Time     `json:"last_sign_in_at,omitempty"`
	BannedUntil      *time.Time     `json:"banned_until,omitempty"`
	AppMetadata      map[string]any `json:"app_metadata"`
	UserMetadata     any            `json:"user_metadata"`
	Identities       []any          `json:"identities"`
	CreatedAt        time.Time      `json:"created_at"`
	UpdatedAt        time.Time      `json:"updated_at"`
	IsAnonymous      bool           `json:"is_anonymous"`
}

// userJSON is the user object with the user's current roles (those of its
// users line and those an administrator gave it).
func (g *Gateway) userJSON(u store.User) userJSON {
	listRoles, _ := g.listed(u.Phone)
	return g.userJSONWithRoles(u, unionRoles(listRoles, u.Roles))
}

func (g *Gateway) userJSONWithRoles(u store.User, roles []string) userJSON {
	if roles == nil {
		roles = []string{}
	}
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	var meta any = map[string]any{}
	if len(u.Metadata) > 0 {
		meta = rawJSON(u.Metadata)
	}
	return userJSON{
		ID:               u.ID,
		Aud:              g.cfg.Audience,
		Role:             session.RoleAuthenticated,
		Phone:            apiPhone(u.Phone),
		PhoneConfirmedAt: opt(u.ConfirmedAt),
		ConfirmedAt:      opt(u.ConfirmedAt),
		LastSignInAt:     opt(u.LastSignInAt),
		BannedUntil:      opt(u.BannedUntil),
		AppMetadata:      map[string]any{"provider": "phone", "providers": []string{"phone"}, "roles": roles},
		UserMetadata:     meta,
		Identities:       []any{},
		CreatedAt:        u.CreatedAt.UTC(),
		UpdatedAt:        u.UpdatedAt.UTC(),
	}
}

type rawJSON []byte
