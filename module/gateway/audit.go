package gateway

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/phone"
)

// maxAuditUA bounds the User-Agent written to audit lines and sessions.
const maxAuditUA = 512

// Actor is who caused a security event: the client of a request, or an
// administrator (through Caddy's admin endpoint, the CLI or the Supabase
// admin routes).
type Actor struct {
	Kind      string // "user", "admin" (admin endpoint) or "service_key"
	IP        string
	UserAgent string
	Host      string
}

// actorOf is the client of r.
func actorOf(r *http.Request, clientIP, kind string) Actor {
	return Actor{Kind: kind, IP: clientIP, UserAgent: truncateUA(r.UserAgent()), Host: r.Host}
}

func truncateUA(ua string) string {
	if len(ua) > maxAuditUA {
		return ua[:maxAuditUA]
	}
	return ua
}

// auditEvent writes one line to the audit log (the gateway logger's "audit"
// namespace): one per sign-in, sign-out, refresh-token reuse, ban, deletion,
// role change and administrative action. Phones are masked; codes, tokens
// and secrets never appear.
func (g *Gateway) auditEvent(event string, fields ...zap.Field) {
	g.audit.Info(event, fields...)
}

// auditFields are the fields every audit line about a person carries.
func auditFields(a Actor, userID, sessionID, e164 string) []zap.Field {
	masked := ""
	if e164 != "" {
		if num, err := phone.Parse(e164); err == nil {
			masked = num.Masked()
		}
	}
	return []zap.Field{
		zap.String("user_id", userID),
		zap.String("session_id", sessionID),
		zap.String("phone", masked),
		zap.String("client_ip", a.IP),
		zap.String("user_agent", a.UserAgent),
		zap.String("host", a.Host),
		zap.String("actor", a.Kind),
	}
}
