package otpgate

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/caddyserver/certmagic"
	"github.com/spf13/cobra"

	"github.com/otpgate/otpgate/module/session"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "otpgate-rotate-key",
		Usage: "[--config <path>] [--adapter <name>] [--alg ES256|EdDSA|RS256]",
		Short: "Rotates otpgate's generated signing key in Caddy storage",
		Long: `
Generates a new signing key in the storage of the given config (Caddy's
default storage when the config sets none) and keeps the current one as the
previous key. After a reload, every instance that shares the storage signs
with the new key, and JWKS publishes both, so tokens signed before the
rotation stay valid until they expire. Rotate again only after access_ttl
has passed, or tokens signed by the oldest key stop verifying.

Not used when signing_key_file or hmac_secret is configured.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().StringP("config", "c", "", "Configuration file (for its storage)")
			cmd.Flags().StringP("adapter", "a", "", "Name of config adapter to apply")
			cmd.Flags().String("alg", "ES256", "Algorithm of the new key: ES256, EdDSA or RS256")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdRotateKey)
		},
	})
}

func cmdRotateKey(fl caddycmd.Flags) (int, error) {
	st, done, err := configStorage(fl.String("config"), fl.String("adapter"))
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	defer done()
	if err := session.RotateKeyRing(context.Background(), st, fl.String("alg")); err != nil {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("rotating the signing key: %w", err)
	}
	fmt.Println("otpgate: signing key rotated; reload every instance that shares this storage")
	return caddy.ExitCodeSuccess, nil
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
