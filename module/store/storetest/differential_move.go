package storetest

import (
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// The phone-change operations of the differential sequences: a change's
// send (BeginSend with ChangeOf and ChangeFrom), ClaimMove, MoveUser and
// Moved. They act on the changes the sequence sent, mostly as the gateway
// would (claim with the user read under the old key, then move), and now
// and then on keys and IDs that do not fit, so that refusals and moves cut
// short (a MoveUser with no claim before it) occur as well.

// change is one phone change code the sequence sent: the user userID moves
// from the key from to the key to.
type change struct {
	to, from    store.UserKey
	challengeID string
	userID      string
}

// phoneChange is a change's send, attempt, claim and move at one instant:
// the whole change that the other operations then act on.
func (d *differential) phoneChange() {
	c, ok := d.changeSend()
	if !ok {
		return
	}
	d.stay = true
	d.attempt()
	d.stay = false
	d.claim(c)
	d.move(c)
}

func (d *differential) changeSendOp() { d.changeSend() }

// changeSend sends a change code to a person's key for the user read under
// another key (or, now and then, a user ID that is not there).
func (d *differential) changeSend() (change, bool) {
	to, h := d.person()
	from := d.otherPerson(to)
	userID := d.earlier(d.userIDs, "u-never")
	if !d.rarely() {
		d.log("User %s (of the change)", from)
		if r, ok := call(d, "User (of the change)", func(s store.Store) (userRead, error) {
			usr, found, err := s.User(d.t.Context(), from)
			return userRead{usr, found}, err
		}); ok && r.Found {
			userID = r.User.ID
		}
	}
	id := d.next("c")
	req := store.SendRequest{
		User: to, Now: d.now,
		Challenge: store.Challenge{
			ID:         id,
			CodeMAC:    []byte("mac of " + id),
			Phone:      newPhone,
			Channel:    pick(d, "sms", "whatsapp"),
			CreateUser: d.byte()%4 == 0,
			SentAt:     d.now,
			ExpiresAt:  d.now.Add(pick(d, 5*time.Minute, 10*time.Minute, 10*time.Second)),
			ChangeOf:   userID,
			ChangeFrom: from,
		},
		Keep:        pick(d, 10*time.Minute, time.Hour),
		PhoneLimit:  pick(d, store.Limit{N: 5, Window: time.Hour}, store.Limit{N: 3, Window: 5 * time.Minute}),
		Cooldown:    pick(d, 0, 10*time.Second),
		RequireUser: d.byte()%8 == 0,
		Unlimited:   d.byte()%4 == 3,
	}
	d.log("BeginSend (change) %s %s of=%s from=%s unlimited=%v", to, id, userID, from, req.Unlimited)
	res, ok := call(d, "BeginSend (change)", func(s store.Store) (store.SendResult, error) {
		return s.BeginSend(d.t.Context(), req)
	})
	if !ok || res.Status != store.SendOK {
		return change{}, false
	}
	h.challenges = append(h.challenges, id)
	c := change{to: to, from: from, challengeID: id, userID: userID}
	d.changes = append(d.changes, c)
	return c, true
}

// otherPerson picks the key a change moves from: another of the persons,
// now and then the same key or an invalid one.
func (d *differential) otherPerson(to store.UserKey) store.UserKey {
	switch b := d.byte(); {
	case b == 255:
		return "tag{with}braces"
	case b == 254:
		return to
	default:
		for i := range persons {
			if u := persons[(int(b)+i)%len(persons)]; u != to {
				return u
			}
		}
	}
	return to
}

// someChange picks one of the changes sent, mostly the latest, now and
// then one made up of other keys and IDs.
func (d *differential) someChange() change {
	b := d.byte()
	switch {
	case len(d.changes) == 0 || b%8 == 7:
		to, _ := d.person()
		return change{to: to, from: d.otherPerson(to), challengeID: d.earlier(d.people[to].challenges, "c-never"),
			userID: d.earlier(d.userIDs, "u-never")}
	case b%8 < 5:
		return d.changes[len(d.changes)-1]
	}
	return d.changes[int(d.byte())%len(d.changes)]
}

func (d *differential) claimMove() { d.claim(d.someChange()) }
func (d *differential) moveUser()  { d.move(d.someChange()) }

// claim claims a change with the user read under its old key, as the
// gateway does (or, when there is none, a user of the change's ID).
func (d *differential) claim(c change) {
	moving := store.User{ID: c.userID, CreatedAt: d.now}
	if c.from != "" {
		d.log("User %s (moving)", c.from)
		if r, ok := call(d, "User (moving)", func(s store.Store) (userRead, error) {
			usr, found, err := s.User(d.t.Context(), c.from)
			return userRead{usr, found}, err
		}); ok && r.Found {
			moving = r.User
		}
	}
	moving.Phone = newPhone
	req := store.ClaimMoveRequest{User: c.to, ChallengeID: c.challengeID, Now: d.now, From: c.from, Moving: moving}
	switch {
	case d.rarely():
		req.ChallengeID = ""
	case d.rarely():
		req.Moving.ID = "with:colon"
	}
	d.log("ClaimMove %s %s from=%s user=%s", req.User, req.ChallengeID, req.From, req.Moving.ID)
	call(d, "ClaimMove", func(s store.Store) (store.MoveStatus, error) {
		return s.ClaimMove(d.t.Context(), req)
	})
}

// move runs MoveUser for a change, now and then with the session of the
// verify that completes it.
func (d *differential) move(c change) {
	req := store.MoveRequest{From: c.from, To: c.to, UserID: c.userID, Now: d.now}
	if d.rarely() {
		req.UserID = "with:colon"
	}
	sid := d.next("s")
	if d.flag() {
		req.Session = &store.Session{
			ID:        sid,
			CreatedAt: pick(d, d.now, time.Time{}),
			ExpiresAt: d.now.Add(pick(d, 10*time.Minute, time.Hour, 24*time.Hour)),
			IP:        pick(d, "", "192.0.2.7"),
			UserAgent: pick(d, "", "Mozilla/5.0", longUserAgent),
		}
		req.RefreshHash = "rt-" + sid
		if d.rarely() {
			req.Session.ExpiresAt = d.now
		}
	}
	d.log("MoveUser %s -> %s user=%s session=%v", req.From, req.To, req.UserID, req.Session != nil)
	res, ok := call(d, "MoveUser", func(s store.Store) (store.MoveResult, error) {
		return s.MoveUser(d.t.Context(), req)
	})
	if !ok || res.Status != store.MoveDone {
		return
	}
	// the sessions and tokens of the old key go on under the new one
	from, to := d.people[c.from], d.people[c.to]
	if from != nil && to != nil && from != to {
		to.sessions = append(to.sessions, from.sessions...)
		to.tokens = append(to.tokens, from.tokens...)
	}
	if req.Session != nil && to != nil {
		to.sessions = append(to.sessions, sid)
		to.tokens = append(to.tokens, req.RefreshHash)
	}
}

func (d *differential) moved() {
	u, _ := d.person()
	d.log("Moved %s", u)
	call(d, "Moved", func(s store.Store) ([]store.Forward, error) {
		return s.Moved(d.t.Context(), u)
	})
}
