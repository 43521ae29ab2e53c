package apierr

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestWrite_ContractBodyHeadersAndRetryAfter(t *testing.T) {
	w := httptest.NewRecorder()
	Write(w, httptest.NewRequest("POST", "/otp", nil), &Error{Status: 429, Code: OverSMSSendLimit, Msg: "wait", RetryAfter: 1500 * time.Millisecond})
	var body map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != 429 || body["code"] != 429.0 || body["error_code"] != OverSMSSendLimit || body["msg"] != "wait" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w.Header().Get("Retry-After") != "2" || w.Header().Get("x-sb-error-code") != OverSMSSendLimit {
		t.Fatalf("headers %v", w.Header())
	}
}

func TestWrite_NewAPIVersionBody(t *testing.T) {
	r := httptest.NewRequest("POST", "/otp", nil)
	r.Header.Set(APIVersionHeader, APIVersion20240101)
	w := httptest.NewRecorder()
	Write(w, r, New(http.StatusForbidden, OTPExpired, "expired"))
	var body map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if body["code"] != OTPExpired || body["message"] != "expired" || w.Header().Get(APIVersionHeader) != APIVersion20240101 {
		t.Fatalf("%s %v", w.Body, w.Header())
	}
}

func TestWrite_WWWAuthenticate(t *testing.T) {
	w := httptest.NewRecorder()
	Write(w, nil, New(401, NoAuthorization, "sign in"))
	if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="otpgate"` {
		t.Fatalf("no credentials: %q", got)
	}
	w = httptest.NewRecorder()
	Write(w, nil, New(401, BadJWT, "bad"))
	if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="otpgate", error="invalid_token"` {
		t.Fatalf("bad token: %q", got)
	}
}
