package memstore

import (
	"context"
	"slices"

	"github.com/otpgate/otpgate/module/store"
)

// BeginSend implements store.Store.
func (s *Store) BeginSend(ctx context.Context, req store.SendRequest) (store.SendResult, error) {
	if err := req.Check(); err != nil {
		return store.SendResult{}, err
	}
	now := ms(req.Now)
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(req.User, wall, true)

	if p.optedOut {
		return store.SendResult{Status: store.SendOptedOut}, nil
	}
	if !req.Unlimited {
		if p.cooldown != nil && now.Before(p.cooldown.until) {
			return store.SendResult{Status: store.SendCooldown, RetryAfter: p.cooldown.until.Sub(now)}, nil
		}
		if p.sends == nil {
			p.sends = &eventLog{}
		}
		ok, _, retry := p.sends.add(req.Challenge.ID, req.PhoneLimit.N, req.PhoneLimit.Window, now, wall)
		if !ok {
			return store.SendResult{Status: store.SendPhoneLimited, RetryAfter: retry}, nil
		}

		if req.Cooldown > 0 {
			p.cooldown = &cooldownRec{until: now.Add(req.Cooldown), sendID: req.Challenge.ID, wall: wall.Add(req.Cooldown)}
		}
	}
	if req.RequireUser && !p.known(req.ListedOK) {
		return store.SendResult{Status: store.SendUnknownUser}, nil
	}
	changeOf := req.Challenge.ChangeOf
	if req.Resend {
		changeOf = ""
		if old := p.challenge; old != nil && now.Before(old.keepUntil) {
			changeOf = old.c.ChangeOf
		}
	}
	if changeOf != "" && p.user != nil && p.user.ID != changeOf {
		return store.SendResult{Status: store.SendTaken}, nil
	}
	if p.user != nil && p.user.Banned(now) {
		return store.SendResult{Status: store.SendBanned}, nil
	}
	if p.failures != nil && now.Before(p.failures.until) {
		return store.SendResult{Status: store.SendLocked}, nil
	}

	c := cloneChallenge(req.Challenge)
	if req.Resend {
		old := p.challenge
		if old == nil || !now.Before(old.keepUntil) {
			return store.SendResult{Status: store.SendNoChallenge}, nil
		}
		if c.Channel == "" {
			c.Channel = old.c.Channel
		}
		c.CreateUser = old.c.CreateUser
		c.Metadata = cloneBytes(old.c.Metadata)
		c.Origin = old.c.Origin
		c.ChangeOf = old.c.ChangeOf
		c.ChangeFrom = old.c.ChangeFrom
	}
	c.Attempts = 0
	c.SentAt = ms(c.SentAt)
	c.ExpiresAt = ms(c.ExpiresAt)
	p.challenge = &challengeRec{c: c, keepUntil: now.Add(req.Keep), wall: wall.Add(req.Keep)}
	return store.SendResult{Status: store.SendOK, Challenge: cloneChallenge(c)}, nil
}

// AbortSend implements store.Store.
func (s *Store) AbortSend(ctx context.Context, user store.UserKey, challengeID string) error {
	if err := store.CheckUserKey(user); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := s.write()
	p := s.person(user, wall, false)
	if p == nil || challengeID == "" {
		return nil
	}
	if p.challenge != nil && p.challenge.c.ID == challengeID {
		p.challenge = nil
	}
	if p.cooldown != nil && p.cooldown.sendID == challengeID {
		p.cooldown = nil
	}
	if p.sends != nil {
		p.sends.events = slices.DeleteFunc(p.sends.events, func(e event) bool { return e.id == challengeID })
	}
	return nil
}
