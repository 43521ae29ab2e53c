package otpgate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/caddyserver/certmagic"
	"github.com/spf13/cobra"

	"github.com/otpgate/otpgate/module/session"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "otpgate-rotate-key",
		Usage: "[--config <path>] [--adapter <name>] [--alg ES256|EdDSA|RS256] [--force]",
		Short: "Rotates otpgate's generated signing key in Caddy storage",
		Long: `
Generates a new signing key in the storage of the given config (Caddy's
default storage when the config sets none) and keeps the current one as the
previous key. After a reload, every instance that shares the storage signs
with the new key, and JWKS publishes both, so tokens signed before the
rotation stay valid until they expire.

A second rotation within access_ttl of the last one is refused: it would
retire the key that signed access tokens still in use, signing their
sessions out. --force does it anyway.

Refused when the config uses signing_key_file or hmac_secret: those keys
are the operator's, not in storage (replace the file or secret and reload).`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().StringP("config", "c", "", "Configuration file (for its storage)")
			cmd.Flags().StringP("adapter", "a", "", "Name of config adapter to apply")
			cmd.Flags().String("alg", "ES256", "Algorithm of the new key: ES256, EdDSA or RS256 (default: the config's signing_alg, else ES256)")
			cmd.Flags().Bool("force", false, "Rotate even within access_ttl of the last rotation")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdRotateKey)
		},
	})
}

func cmdRotateKey(fl caddycmd.Flags) (int, error) {
	app, err := configApp(fl.String("config"), fl.String("adapter"))
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	switch {
	case app.HMACSecret != "":
		return caddy.ExitCodeFailedStartup, errors.New("otpgate-rotate-key: this config signs with hmac_secret (HS256), which is not kept in storage: " +
			"nothing was rotated. To change it, set a new hmac_secret and reload (every session signs in again)")
	case app.SigningKeyFile != "":
		return caddy.ExitCodeFailedStartup, fmt.Errorf("otpgate-rotate-key: this config signs with signing_key_file %s, which is not kept in storage: "+
			"nothing was rotated. To change it, point signing_key_file at a new key and reload", app.SigningKeyFile)
	}
	alg := fl.String("alg")
	if !fl.Changed("alg") && app.SigningAlg != "" {
		alg = app.SigningAlg
	}
	accessTTL := time.Duration(app.AccessTTL)
	if accessTTL <= 0 {
		accessTTL = time.Hour
	}
	minInterval := accessTTL
	if fl.Bool("force") {
		minInterval = 0
	}
	st, done, err := configStorage(fl.String("config"), fl.String("adapter"))
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	defer done()
	err = session.RotateKeyRing(context.Background(), st, alg, time.Now(), minInterval)
	var recent *session.RotatedRecentlyError
	if errors.As(err, &recent) {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("otpgate-rotate-key: refused, nothing was rotated: %v (access_ttl %v). "+
			"Wait until then, or pass --force to sign out every session whose access token the retired key signed", recent, accessTTL)
	}
	if err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("rotating the signing key: %w", err)
	}
	fmt.Println("otpgate: signing key rotated; reload every instance that shares this storage")
	return caddy.ExitCodeSuccess, nil
}

// configApp is the otpgate app of a config file (empty when there is no
// file or it has no otpgate app).
func configApp(configFile, adapter string) (*App, error) {
	app := new(App)
	if configFile == "" {
		return app, nil
	}
	raw, _, _, err := caddycmd.LoadConfig(configFile, adapter)
	if err != nil {
		return nil, err
	}
	var cfg caddy.Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, err
	}
	if r := cfg.AppsRaw["otpgate"]; len(r) > 0 {
		if err := json.Unmarshal(r, app); err != nil {
			return nil, fmt.Errorf("otpgate app: %w", err)
		}
	}
	return app, nil
}

// configStorage is the storage a config would use; done releases the
// storage module once the caller is finished with it.
func configStorage(configFile, adapter string) (st certmagic.Storage, done func(), err error) {
	done = func() {}
	if configFile == "" {
		return caddy.DefaultStorage, done, nil
	}
	raw, _, _, err := caddycmd.LoadConfig(configFile, adapter)
	if err != nil {
		return nil, done, err
	}
	var cfg caddy.Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, done, err
	}
	if len(cfg.StorageRaw) == 0 {
		return caddy.DefaultStorage, done, nil
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	mod, err := ctx.LoadModule(&cfg, "StorageRaw")
	if err != nil {
		cancel()
		return nil, done, fmt.Errorf("loading storage module: %w", err)
	}
	conv, ok := mod.(caddy.StorageConverter)
	if !ok {
		cancel()
		return nil, done, fmt.Errorf("storage module %T cannot provide storage", mod)
	}
	st, err = conv.CertMagicStorage()
	if err != nil {
		cancel()
		return nil, done, err
	}
	return st, cancel, nil
}
