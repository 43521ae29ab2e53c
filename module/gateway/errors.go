package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/phone"
	"github.com/otpgate/otpgate/module/sender"
	"github.com/otpgate/otpgate/module/store"
)

func phoneError(err error) error {
	if errors.Is(err, phone.ErrNotAllowed) {
		return apierr.Wrap(http.StatusForbidden, apierr.PhoneNotAllowed, "Codes cannot be sent to this number.", err)
	}
	return apierr.Wrap(http.StatusBadRequest, apierr.ValidationFailed,
		"phone must be a valid number in E.164 format, country code first, e.g. +14155550100 (the '+' may be left out).", err)
}

func providerError(err error) *apierr.Error {
	switch {
	case errors.Is(err, sender.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return apierr.Wrap(http.StatusGatewayTimeout, apierr.ProviderTimeout, "The SMS provider did not answer in time. Try again in a moment.", err)
	case errors.Is(err, sender.ErrChannel):
		return apierr.Wrap(http.StatusBadRequest, apierr.ValidationFailed, "This channel is not configured on this server.", err)
	}
	return apierr.Wrap(http.StatusBadGateway, apierr.SMSSendFailed, "The code could not be sent. Try again in a moment.", err)
}

func storeError(err error) error {
	if errors.Is(err, store.ErrInvalid) {
		// a request no correct caller makes: a bug here, not an outage
		return apierr.Wrap(http.StatusInternalServerError, apierr.UnexpectedFailure, "Unexpected failure.", err)
	}
	return apierr.Wrap(http.StatusServiceUnavailable, apierr.StoreUnavailable, "The service is temporarily unavailable. Try again in a moment.", err)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"code":500,"error_code":"unexpected_failure","msg":"Unexpected failure."}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// isUnavailable reports whether err is the store not answering (the
// caller may fail closed rather than refuse the person).
func isUnavailable(err error) bool { return apierr.As(err).Code == apierr.StoreUnavailable }
