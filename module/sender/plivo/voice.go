package plivo

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	plivogo "github.com/plivo/plivo-go/v7"
	"go.uber.org/zap"

	"github.com/otpgate/otpgate/module/apierr"
	"github.com/otpgate/otpgate/module/sender"
)

// A voice code travels to the call, and only to it, sealed in the answer
// URL: {api}/plivo/voice?t=<AES-256-GCM under a key derived from the
// server secret>. Plivo fetches that URL (signed, V3) when the phone
// answers; the token is accepted once, before it expires, for the number
// it was made for. Nothing of the code is stored, and Plivo only ever sees
// it sealed.

// Voice call bounds: how long Plivo lets the phone ring and how long a
// call may last (the code said twice takes well under a minute).
const (
	voiceRingTimeout = 45
	voiceTimeLimit   = 90
	// a token outlives the ringing, and never the code
	minVoiceTokenTTL = time.Minute
	maxVoiceTokenTTL = 10 * time.Minute
)

// answerPath is where the gateway serves Callbacks.ServeVoice, under the
// API prefix.
const answerPath = "/plivo/voice"

// voiceToken is what the answer URL carries, sealed.
type voiceToken struct {
	ID   string `json:"i"` // random: the token's single use
	To   string `json:"t"` // E.164 of the called phone
	Code string `json:"c"`
	App  string `json:"a"`
	Lang string `json:"l"` // Plivo Speak language, e.g. en-US
	Exp  int64  `json:"e"` // unix seconds
}

type sealer struct{ aead cipher.AEAD }

// sealAAD binds tokens to their use: a value sealed for anything else with
// the same key never opens as a voice token.
var sealAAD = []byte("otpgate plivo voice answer v1")

func newSealer(secret []byte) (*sealer, error) {
	if len(secret) < 16 {
		return nil, errors.New("plivo voice: server secret missing or too short")
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("otpgate/plivo/voice-answer-key"))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("plivo voice: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("plivo voice: %w", err)
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(t voiceToken) (string, error) {
	plain, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, sealAAD)), nil
}

var errBadToken = errors.New("voice token does not open")

func (s *sealer) open(raw string) (voiceToken, error) {
	var t voiceToken
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) < s.aead.NonceSize()+s.aead.Overhead() {
		return t, errBadToken
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, b[:n], b[n:], sealAAD)
	if err != nil {
		return t, errBadToken
	}
	if err := json.Unmarshal(plain, &t); err != nil || t.ID == "" || t.Code == "" {
		return voiceToken{}, errBadToken
	}
	return t, nil
}

// call asks Plivo to call dst from VoiceFrom; Plivo then fetches the
// answer URL, built on the request's sender.Origin.
func (s *Sender) call(ctx context.Context, dst string, m sender.Message) (sender.Result, error) {
	origin := sender.OriginOf(ctx)
	if origin.APIURL == "" {
		return sender.Result{}, errors.New("plivo call: no public URL of the auth API to build the answer URL on")
	}
	ttl := min(max(m.TTL, minVoiceTokenTTL), maxVoiceTokenTTL)
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return sender.Result{}, fmt.Errorf("plivo call: %w", err)
	}
	sl, err := newSealer(s.cfg.Secret())
	if err != nil {
		return sender.Result{}, fmt.Errorf("plivo call: %w", err)
	}
	token, err := sl.seal(voiceToken{
		ID: hex.EncodeToString(id), To: m.To, Code: m.Code, App: m.App,
		Lang: VoiceLanguage(origin.AcceptLanguage),
		Exp:  time.Now().Add(ttl).Unix(),
	})
	if err != nil {
		return sender.Result{}, fmt.Errorf("plivo call: %w", err)
	}
	answer := strings.TrimRight(origin.APIURL, "/") + answerPath + "?t=" + token
	from, _ := plivoNumber(s.cfg.VoiceFrom)
	params := plivogo.CallCreateParams{
		From:         from,
		To:           dst,
		AnswerURL:    answer,
		AnswerMethod: http.MethodPost,
		RingTimeout:  voiceRingTimeout,
		TimeLimit:    voiceTimeLimit,
	}
	uuid, err := s.do(ctx, "plivo call", "request_uuid", []string{m.Code, m.To, dst, token}, func(c *plivogo.Client) (string, string, error) {
		resp, err := c.Calls.Create(params)
		if err != nil || resp == nil {
			return "", "", err
		}
		id, _ := resp.RequestUUID.(string)
		return id, "", nil
	})
	if err != nil {
		return sender.Result{}, err
	}
	s.logger.Debug("plivo: call queued", zap.String("channel", sender.Voice),
		zap.String("to", sender.MaskTail(m.To)), zap.String("message_id", uuid))
	return sender.Result{MessageID: uuid}, nil
}

// ServeVoice answers Plivo's fetch of a voice call's answer URL with the
// XML that speaks the code, digit by digit, twice. The request must be
// signed (V3) with a fresh nonce like every callback, and carry a token
// this server sealed, not expired, for the number Plivo called and not
// used before. Anything else is refused: 403, nothing spoken.
func (c *Callbacks) ServeVoice(w http.ResponseWriter, r *http.Request) {
	form, ok := c.verify(w, r)
	if !ok {
		return
	}
	refuse := func(reason string, e *apierr.Error) {
		c.logger().Warn("plivo: voice answer refused", zap.String("reason", reason))
		apierr.Write(w, r, e)
	}
	forged := apierr.New(http.StatusForbidden, apierr.InvalidSignature, "Invalid voice answer URL.")
	var secret []byte
	if c.Secret != nil {
		secret = c.Secret()
	}
	sl, err := newSealer(secret)
	if err != nil {
		refuse("voice is not enabled", forged)
		return
	}
	t, err := sl.open(r.URL.Query().Get("t"))
	switch {
	case err != nil:
		refuse("token does not open", forged)
		return
	case e164(form.Get("To")) != t.To:
		refuse("called number differs from the token's", forged)
		return
	case time.Now().Unix() > t.Exp:
		refuse("token expired", apierr.New(http.StatusForbidden, apierr.OTPExpired, "This call's code has expired."))
		return
	}
	first, err := c.Seen(r.Context(), "voice-answer:"+t.ID)
	if err != nil {
		c.logger().Error("plivo: voice token not recorded", zap.Error(err))
		apierr.Write(w, r, apierr.New(http.StatusServiceUnavailable, apierr.StoreUnavailable, "Try again later."))
		return
	}
	if !first {
		refuse("token already used", apierr.New(http.StatusForbidden, apierr.OTPExpired, "This call's code was already spoken."))
		return
	}
	c.logger().Info("plivo: voice code spoken", zap.String("to", sender.MaskTail(t.To)),
		zap.String("call_uuid", form.Get("CallUUID")), zap.String("language", t.Lang))
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(AnswerXML(t.App, t.Code, t.Lang))
}

// AnswerXML is the Plivo XML that says the code twice, digit by digit, in
// language (a Plivo Speak language such as en-US).
func AnswerXML(app, code, language string) []byte {
	p, ok := voicePhrases[phraseKey(language)]
	if !ok {
		language, p = "en-US", voicePhrases["en"]
	}
	digits := strings.Join(strings.Split(code, ""), ", ") + "."
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<Response>")
	speak := func(text string) {
		b.WriteString(`<Speak voice="WOMAN" language="`)
		_ = xml.EscapeText(&b, []byte(language))
		b.WriteString(`">`)
		_ = xml.EscapeText(&b, []byte(text))
		b.WriteString(`</Speak>`)
	}
	speak(strings.ReplaceAll(p.intro, "{app}", app) + " " + digits)
	b.WriteString(`<Wait length="1"/>`)
	speak(p.again + " " + digits)
	b.WriteString("</Response>\n")
	return b.Bytes()
}

type phrases struct{ intro, again string }

// voicePhrases are keyed by phraseKey: the primary language subtag.
var voicePhrases = map[string]phrases{
	"en":  {"Your {app} code is:", "Again:"},
	"es":  {"Su código de {app} es:", "Repito:"},
	"fr":  {"Votre code {app} est :", "Je répète :"},
	"de":  {"Ihr {app}-Code lautet:", "Noch einmal:"},
	"pt":  {"Seu código {app} é:", "Repetindo:"},
	"hi":  {"आपका {app} कोड है:", "फिर से:"},
	"arb": {"رمز {app} الخاص بك هو:", "مرة أخرى:"},
	"cmn": {"您的 {app} 验证码是：", "再说一遍："},
	"it":  {"Il tuo codice {app} è:", "Ripeto:"},
	"nl":  {"Uw {app}-code is:", "Nogmaals:"},
}

func phraseKey(language string) string {
	k, _, _ := strings.Cut(language, "-")
	return k
}

// speakLanguages maps lower-case BCP 47 tags, and bare primary subtags,
// to the Plivo Speak languages that have phrases.
var speakLanguages = map[string]string{
	"en": "en-US", "en-us": "en-US", "en-gb": "en-GB", "en-au": "en-AU", "en-in": "en-IN",
	"es": "es-ES", "es-es": "es-ES", "es-mx": "es-MX", "es-us": "es-US", "es-419": "es-MX",
	"fr": "fr-FR", "fr-fr": "fr-FR", "fr-ca": "fr-CA",
	"de": "de-DE", "de-de": "de-DE",
	"pt": "pt-BR", "pt-br": "pt-BR", "pt-pt": "pt-PT",
	"hi": "hi-IN", "hi-in": "hi-IN",
	"ar": "arb",
	"zh": "cmn-CN", "zh-cn": "cmn-CN", "zh-hans": "cmn-CN", "zh-hans-cn": "cmn-CN",
	"it": "it-IT", "it-it": "it-IT",
	"nl": "nl-NL", "nl-nl": "nl-NL",
}

// VoiceLanguage picks the Plivo Speak language for an Accept-Language
// header: the most preferred language Plivo speaks and otpgate has
// phrases for, else en-US.
func VoiceLanguage(acceptLanguage string) string {
	best, bestQ := "en-US", 0.0
	for i, part := range strings.Split(acceptLanguage, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag = strings.ToLower(strings.TrimSpace(tag))
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if _, err := fmt.Sscanf(v, "%g", &q); err != nil {
				continue
			}
		}
		q -= float64(i) * 1e-6 // earlier wins a tie
		lang, ok := speakLanguages[tag]
		if !ok {
			primary, _, _ := strings.Cut(tag, "-")
			lang, ok = speakLanguages[primary]
		}
		if ok && q > bestQ {
			best, bestQ = lang, q
		}
	}
	return best
}
