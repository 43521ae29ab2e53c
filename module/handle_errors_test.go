package otpgate

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/otpgate/otpgate/module/internal/testenv"
)

// `handle_errors 401 403 { … }` restyles the gate's 401 and 403 as it
// restyles basic_auth's: the gate hands the refusal to the server's error
// routes. Where they have no answer for it (no handle_errors, or only
// for other codes), the gate answers as always: JSON, or for a browser
// navigation the login redirect; never the empty body Caddy gives an
// unhandled error.
func TestCaddy_HandleErrors_RestylesGateRefusals(t *testing.T) {
	styled, plain, other := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	testenv.LoadCaddyfile(t, fmt.Sprintf(`{
	admin off
	auto_https off
	otpgate {
		test_phone +12015550100 123456
	}
}

http://127.0.0.1:%d {
	otpgate {
		roles admin
	}
	respond "app"
	handle_errors 401 403 {
		respond "styled {http.error.status_code}: {http.error.message}"
	}
}

http://127.0.0.1:%d {
	otpgate {
		roles admin
	}
	respond "app"
}

http://127.0.0.1:%d {
	otpgate {
		roles admin
	}
	respond "app"
	handle_errors 5xx {
		respond "server trouble"
	}
}
`, styled, plain, other))
	base := func(port int) string { return fmt.Sprintf("http://127.0.0.1:%d", port) }
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}

	// a signed-in user without the site's role, for the 403s
	call(t, c, "POST", base(styled)+"/auth/v1/otp", `{"phone":"+12015550100"}`)
	_, _, tok := call(t, c, "POST", base(styled)+"/auth/v1/verify", `{"type":"sms","phone":"+12015550100","token":"123456"}`)
	bearer := "Bearer " + tok["access_token"].(string)

	// restyled, keeping the challenge header as basic_auth does
	res, body := get(base(styled)+"/app", "Accept", "application/json")
	if res.StatusCode != 401 || body != "styled 401: no_authorization: Sign in to continue." {
		t.Errorf("styled 401: %d %q", res.StatusCode, body)
	}
	if res.Header.Get("WWW-Authenticate") == "" || res.Header.Get("x-sb-error-code") != "no_authorization" {
		t.Errorf("styled 401 headers: %v", res.Header)
	}
	res, body = get(base(styled)+"/app", "Authorization", bearer)
	if res.StatusCode != 403 || body != "styled 403: no_access: Your account does not have access to this site." {
		t.Errorf("styled 403: %d %q", res.StatusCode, body)
	}
	res, body = get(base(styled)+"/app", "Authorization", bearer, "Accept", "text/html", "Sec-Fetch-Mode", "navigate")
	if res.StatusCode != 403 || !strings.HasPrefix(body, "styled 403") {
		t.Errorf("styled 403 for a browser: %d %q", res.StatusCode, body)
	}
	// a browser navigation without a session still goes to the login page
	res, _ = get(base(styled)+"/app", "Accept", "text/html")
	if res.StatusCode != 302 || !strings.HasPrefix(res.Header.Get("Location"), "/auth/login?") {
		t.Errorf("browser navigation: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	// the auth API's own errors are the API's, never restyled
	res, body = get(base(styled)+"/auth/v1/user", "Accept", "application/json")
	if res.StatusCode != 401 || !strings.Contains(body, `"error_code"`) {
		t.Errorf("API 401: %d %q", res.StatusCode, body)
	}

	// no handle_errors, or none for these codes: otpgate's own answers
	for _, port := range []int{plain, other} {
		res, body = get(base(port)+"/app", "Accept", "application/json")
		if res.StatusCode != 401 || !strings.Contains(body, `"error_code":"no_authorization"`) {
			t.Errorf("port %d, 401: %d %q", port, res.StatusCode, body)
		}
		res, body = get(base(port)+"/app", "Authorization", bearer)
		if res.StatusCode != 403 || !strings.Contains(body, `"error_code":"no_access"`) {
			t.Errorf("port %d, 403: %d %q", port, res.StatusCode, body)
		}
	}
}
