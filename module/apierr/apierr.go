// Package apierr is the one error type of otpgate's HTTP API and its JSON
// forms (Supabase Auth compatible).
package apierr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error is an API error: an HTTP status, a snake_case code and a message
// meant for people.
type Error struct {
	Status     int
	Code       string
	Msg        string
	RetryAfter time.Duration // sets Retry-After when > 0
	Err        error         // internal cause; logged, never sent
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Msg, e.Err)
	}
	return e.Code + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an Error.
func New(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Msg: msg}
}

// Wrap returns an Error with an internal cause.
func Wrap(status int, code, msg string, err error) *Error {
	return &Error{Status: status, Code: code, Msg: msg, Err: err}
}

// Error codes of the contract.
const (
	ValidationFailed  = "validation_failed"
	BadJSON           = "bad_json"
	RequestTooLarge   = "request_too_large"
	CaptchaFailed     = "captcha_failed"
	PhoneNotAllowed   = "phone_not_allowed"
	OverSMSSendLimit  = "over_sms_send_rate_limit"
	OverRequestLimit  = "over_request_rate_limit"
	OTPExpired        = "otp_expired"
	PhoneOptedOut     = "phone_opted_out"
	SMSSendFailed     = "sms_send_failed"
	ProviderTimeout   = "provider_timeout"
	StoreUnavailable  = "store_unavailable"
	SessionNotFound   = "session_not_found"
	RefreshTokenUsed  = "refresh_token_already_used"
	NoAuthorization   = "no_authorization"
	BadJWT            = "bad_jwt"
	MethodNotAllowed  = "method_not_allowed"
	NotFound          = "not_found"
	CrossSiteRequest  = "cross_site_request"
	UnexpectedFailure = "unexpected_failure"
	InvalidSignature  = "invalid_signature"
	UserBanned        = "user_banned"
	NoAccess          = "no_access"
	UserNotFound      = "user_not_found"
	PhoneExists       = "phone_exists"
)

// APIVersionHeader selects the newer error body when it equals
// APIVersion20240101.
const (
	APIVersionHeader   = "X-Supabase-Api-Version"
	APIVersion20240101 = "2024-01-01"
)

// As converts any error to an *Error; unknown errors become 500.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Wrap(http.StatusInternalServerError, UnexpectedFailure, "Unexpected failure, please try again.", err)
}

// Write sends e as JSON in the form the request asks for.
func Write(w http.ResponseWriter, r *http.Request, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("x-sb-error-code", e.Code)
	if e.RetryAfter > 0 {
		secs := int64((e.RetryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	if e.Status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		// RFC 6750: a request without credentials gets no error attribute
		if e.Code == NoAuthorization {
			h.Set("WWW-Authenticate", `Bearer realm="otpgate"`)
		} else {
			h.Set("WWW-Authenticate", `Bearer realm="otpgate", error="invalid_token"`)
		}
	}
	var body []byte
	if r != nil && r.Header.Get(APIVersionHeader) == APIVersion20240101 {
		// clients read the newer body only when the answer says it is one
		h.Set(APIVersionHeader, APIVersion20240101)
		body, _ = json.Marshal(struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}{e.Code, e.Msg})
	} else {
		body, _ = json.Marshal(struct {
			Code      int    `json:"code"`
			ErrorCode string `json:"error_code"`
			Msg       string `json:"msg"`
		}{e.Status, e.Code, e.Msg})
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}
