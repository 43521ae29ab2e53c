package redisstore

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/otpgate/otpgate/module/store"
)

// Phone changes (see store.Store). The old and the new phone's keys are
// two hash slots, so a move is several scripts, each on one key and each
// safe to run again: claim_move.lua (new key), move_out.lua (old key),
// move_in.lua (new key), the user index (its own slot) and move_finish.lua
// (old key). A move cut short leaves its record under the old key, where
// Moved reports it pending, and MoveUser completes it.

// ClaimMove implements store.Store.
func (s *Store) ClaimMove(ctx context.Context, req store.ClaimMoveRequest) (store.MoveStatus, error) {
	if err := req.Check(); err != nil {
		return 0, err
	}
	u := req.Moving
	roles, err := store.NormRoles(u.Roles)
	if err != nil {
		return 0, err
	}
	optMillis := func(t int64) string {
		if t == 0 {
			return ""
		}
		return strconv.FormatInt(t, 10)
	}
	created := millis(u.CreatedAt)
	if created == 0 {
		created = req.Now.UnixMilli()
	}
	keys := []string{userKey(req.User, "ch"), userKey(req.User, "fail"), userKey(req.User, "user")}
	v, err := claimMoveScript.Run(ctx, s.client, keys,
		req.Now.UnixMilli(), req.ChallengeID, u.ID, string(req.From), u.Phone, created,
		optMillis(millis(u.LastSignInAt)), u.Metadata, strings.Join(roles, ","),
		optMillis(millis(u.BannedUntil)), u.Origin).Text()
	if err != nil {
		return 0, unavailable("claim move", err)
	}
	switch v {
	case "done":
		return store.MoveDone, nil
	case "gone":
		return store.MoveGone, nil
	case "taken":
		return store.MoveTaken, nil
	}
	return 0, badReply("claim move", v)
}

// MoveUser implements store.Store: out (old key), in (new key), the index,
// finish (old key): four scripts and the index's two commands.
func (s *Store) MoveUser(ctx context.Context, req store.MoveRequest) (store.MoveResult, error) {
	if err := req.Check(); err != nil {
		return store.MoveResult{}, err
	}
	now := req.Now.UnixMilli()
	out, err := moveOutScript.Run(ctx, s.client,
		[]string{userKey(req.From, "user"), userKey(req.From, "sessions"), userKey(req.From, "rts"), userKey(req.From, "moved")},
		now, req.UserID, string(req.To), userKey(req.From, "s:"), userKey(req.From, "rt:"),
		store.AnnounceRetention.Milliseconds()).Slice()
	if err != nil {
		return store.MoveResult{}, unavailable("move out", err)
	}
	if len(out) == 0 {
		return store.MoveResult{}, badReply("move out", out)
	}
	status, _ := out[0].(string)
	mode, record := "", ""
	switch status {
	case "out", "kept":
		rec, ok := out[len(out)-1].(string)
		if len(out) != 2 || !ok {
			return store.MoveResult{}, badReply("move out", out)
		}
		mode, record = "in", rec
	case "done", "gone":
		mode = status
	default:
		return store.MoveResult{}, badReply("move out", out)
	}

	sessKey, tokKey := userKey(req.To, "s:"), userKey(req.To, "rt:")
	sessArgs := []any{"", "", "", "", "", ""}
	if sess := req.Session; sess != nil {
		created := sess.CreatedAt
		if created.IsZero() {
			created = req.Now
		}
		sessKey, tokKey = userKey(req.To, "s:"+sess.ID), userKey(req.To, "rt:"+req.RefreshHash)
		sessArgs = []any{sess.ID, created.UnixMilli(), sess.ExpiresAt.UnixMilli(), req.RefreshHash,
			sess.IP, store.ClipUserAgent(sess.UserAgent)}
	}
	args := append([]any{now, req.UserID, string(req.From), mode, record, userKey(req.To, "s:"), userKey(req.To, "rt:")}, sessArgs...)
	in, err := moveInScript.Run(ctx, s.client,
		[]string{userKey(req.To, "user"), userKey(req.To, "sessions"), userKey(req.To, "rts"), sessKey, tokKey},
		args...).Slice()
	if err != nil {
		return store.MoveResult{}, unavailable("move in", err)
	}
	if len(in) == 0 {
		return store.MoveResult{}, badReply("move in", in)
	}
	if st, _ := in[0].(string); st == "gone" {
		return store.MoveResult{Status: store.MoveGone}, nil
	}
	if st, _ := in[0].(string); st != "ok" || len(in) != 2 {
		return store.MoveResult{}, badReply("move in", in)
	}
	m, ok := fields(in[1])
	if !ok {
		return store.MoveResult{}, badReply("move in", in[1])
	}
	u := userFrom(m)

	// The index names the new key before the record goes: a failure here
	// leaves the move pending, and the next MoveUser indexes again.
	if err := s.index(ctx, req.To, req.UserID); err != nil {
		return store.MoveResult{}, err
	}
	if err := s.client.ZRem(ctx, indexKey, req.UserID+":"+string(req.From)).Err(); err != nil {
		return store.MoveResult{}, unavailable("move index", err)
	}
	if err := moveFinishScript.Run(ctx, s.client, []string{userKey(req.From, "moved")}, req.UserID, string(req.To)).Err(); err != nil {
		return store.MoveResult{}, unavailable("move finish", err)
	}
	return store.MoveResult{Status: store.MoveDone, User: u}, nil
}

// Moved implements store.Store.
func (s *Store) Moved(ctx context.Context, user store.UserKey) ([]store.Forward, error) {
	if err := store.CheckUserKey(user); err != nil {
		return nil, err
	}
	v, err := movedScript.Run(ctx, s.client, []string{userKey(user, "moved")}).Slice()
	if err != nil {
		return nil, unavailable("moved", err)
	}
	if len(v)%3 != 0 {
		return nil, badReply("moved", v)
	}
	var out []store.Forward
	for i := 0; i < len(v); i += 3 {
		id, ok1 := v[i].(string)
		to, ok2 := v[i+1].(string)
		pending, ok3 := v[i+2].(int64)
		if !ok1 || !ok2 || !ok3 {
			return nil, badReply("moved", v)
		}
		out = append(out, store.Forward{UserID: id, To: store.UserKey(to), Pending: pending == 1})
	}
	slices.SortFunc(out, func(a, b store.Forward) int { return strings.Compare(a.UserID, b.UserID) })
	return out, nil
}
