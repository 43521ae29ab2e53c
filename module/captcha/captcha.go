// Package captcha checks a CAPTCHA token with its provider's siteverify
// endpoint before otpgate spends money on an SMS.
//
// Turnstile, hCaptcha and reCAPTCHA share one protocol (a form POST of
// secret, response and remoteip answered by JSON with a "success" flag), so
// one Verifier serves all three and only the URL differs.
package captcha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrFailed is wrapped by every error Verify returns. Callers map it to
// 400 captcha_failed whatever the cause: when the provider cannot be asked,
// the send is refused (fail closed), because a CAPTCHA that lets traffic
// through during an outage is what an SMS-pumping attacker waits for.
var ErrFailed = errors.New("captcha verification failed")

// DefaultTimeout bounds a siteverify call when Verifier.Timeout is zero; it
// is short because a user is waiting on the login page.
const DefaultTimeout = 5 * time.Second

// Providers' documented tokens are at most a few KiB; anything larger is
// not worth a network round trip.
const maxTokenLen = 8 << 10

// The provider's answer is a small JSON object; the cap keeps a hostile or
// broken endpoint (VerifyURL is configurable) from making us buffer much.
const maxResponseBytes = 64 << 10

var defaultURLs = map[string]string{
	"turnstile": "https://challenges.cloudflare.com/turnstile/v0/siteverify",
	"hcaptcha":  "https://api.hcaptcha.com/siteverify",
	"recaptcha": "https://www.google.com/recaptcha/api/siteverify",
}

// ValidProvider reports whether name is a provider Verifier knows the
// siteverify URL of, for config validation.
func ValidProvider(name string) bool {
	_, ok := defaultURLs[name]
	return ok
}

// Verifier verifies tokens for one configured provider. It holds no state
// between calls and is safe for concurrent use.
type Verifier struct {
	Provider  string        // turnstile, hcaptcha or recaptcha
	Secret    string        // the site's secret key
	VerifyURL string        // overrides the provider's siteverify URL (tests, proxies)
	Client    *http.Client  // nil means http.DefaultClient
	Timeout   time.Duration // zero means DefaultTimeout
}

// Verify returns nil only when the provider confirms token. remoteIP is
// sent when known so the provider can match the solver to the requester.
func (v *Verifier) Verify(ctx context.Context, token, remoteIP string) error {
	if token == "" {
		return fmt.Errorf("%s: missing token: %w", v.Provider, ErrFailed)
	}
	if len(token) > maxTokenLen {
		return fmt.Errorf("%s: token too long: %w", v.Provider, ErrFailed)
	}
	endpoint := v.VerifyURL
	if endpoint == "" {
		endpoint = defaultURLs[v.Provider]
	}
	if endpoint == "" {
		return fmt.Errorf("unknown captcha provider %q: %w", v.Provider, ErrFailed)
	}

	timeout := v.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	form := url.Values{"secret": {v.Secret}, "response": {token}}
	if remoteIP != "" {
		form.Set("remoteip", remoteIP)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("%s siteverify: %w: %w", v.Provider, ErrFailed, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")

	client := v.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s siteverify: %w: %w", v.Provider, ErrFailed, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s siteverify: status %d: %w", v.Provider, resp.StatusCode, ErrFailed)
	}

	var result struct {
		Success    bool     `json:"success"`
		ErrorCodes []string `json:"error-codes"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(&result); err != nil {
		return fmt.Errorf("%s siteverify: bad response: %v: %w", v.Provider, err, ErrFailed)
	}
	if !result.Success {
		return fmt.Errorf("%s siteverify: rejected %v: %w", v.Provider, result.ErrorCodes, ErrFailed)
	}
	return nil
}
