package session

import (
	"strings"
	"testing"
)

func TestKeyConfig_Validate(t *testing.T) {
	for _, c := range []KeyConfig{{}, {Alg: AlgEdDSA}, {KeyFile: "/k.pem"}, {HMACSecret: strings.Repeat("k", MinHMACSecret)}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	for _, tc := range []struct {
		c    KeyConfig
		want string
	}{
		{KeyConfig{Alg: AlgHS256}, `signing_alg: unknown algorithm "HS256"`},
		{KeyConfig{HMACSecret: "short"}, "hmac_secret: must be at least 32 bytes (got 5)"},
		{KeyConfig{HMACSecret: strings.Repeat("k", 32), Alg: AlgES256}, "hmac_secret: cannot be combined with signing_key_file or signing_alg"},
	} {
		if err := tc.c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
}
