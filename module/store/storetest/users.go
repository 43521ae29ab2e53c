package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/module/store"
)

// The subtests of who may enter: bans, users of the list, administrators'
// users and the user index, session details and inactivity.

var usersTests = []test{
	{"User_Unknown_NotFound", testUserUnknown},

	{"BeginSend_BannedUser_CountsLimitStoresNothing", testBeginSendBanned},
	{"BeginSend_ListedUserRequireUser_KnownOnlyWhenListedOK", testBeginSendListed},
	{"BeginSend_Origin_StoredAndKeptOnResend", testBeginSendOrigin},

	{"Consume_BannedUser_BannedConsumedNoSession", testConsumeBanned},
	{"Consume_ListedUser_NoUserUnlessListedOK", testConsumeListed},
	{"Consume_CreatesUserWithChallengeOrigin", testConsumeOrigin},
	{"Consume_CreatedUser_Indexed", testConsumeIndexes},
	{"Consume_NewUserHint_SameResultsEitherWay", testConsumeNewUserHint},
	{"Challenge_HasUser_ReportsTheUser", testChallengeHasUser},
	{"Consume_StoresSessionIPAndUserAgent", testConsumeSessionDetails},

	{"CreateUser_CreatesAndIndexes", testCreateUser},
	{"CreateUser_Existing_ReturnsStoredNotCreated", testCreateUserExisting},
	{"CreateUser_Invited_SignsInAndIsConfirmed", testCreateUserSignsIn},
	{"CreateUser_Invalid_RefusedNotUnavailable", testCreateUserInvalid},

	{"UpdateUser_Roles_SortedUniqueAndCleared", testUpdateUserRoles},
	{"UpdateUser_Ban_SetAndLifted", testUpdateUserBan},
	{"UpdateUser_Metadata_ReplacedAndCleared", testUpdateUserMetadata},
	{"UpdateUser_Confirmed_OnlyWhenUnconfirmed", testUpdateUserConfirmed},
	{"UpdateUser_NilFields_OnlyUpdatedAtChanges", testUpdateUserNil},
	{"UpdateUser_Unknown_NotFoundCreatesNothing", testUpdateUserUnknown},

	{"DeleteUser_ErasesPersonKeepsSendLimit", testDeleteUserErases},
	{"DeleteUser_ReturnsOnlyActiveSessions", testDeleteUserActive},
	{"DeleteUser_KeepsOptOut", testDeleteUserOptOut},
	{"DeleteUser_SignUpAgain_NewUser", testDeleteUserSignUpAgain},
	{"DeleteUser_Unknown_NotFound", testDeleteUserUnknown},

	{"ListUsers_PagesInIDOrder", testListUsersPages},
	{"ListUsers_Invalid_Refused", testListUsersInvalid},
	{"UserByID_FindsKeyAndUser", testUserByID},
	{"UserByID_Unknown_NotFound", testUserByIDUnknown},

	{"Sessions_ActiveOnlyOldestFirstWithDetails", testSessions},

	{"Rotate_OK_SetsRefreshedAt", testRotateRefreshed},
	{"Rotate_Inactive_IdleAndRevoked", testRotateIdle},
	{"Rotate_Inactivity_CountsFromLastRefresh", testRotateIdleFromRefresh},
	{"Rotate_ReusedTokenOfIdleSession_Reused", testRotateReusedBeatsIdle},

	{"Access_SessionAndUser", testAccess},
	{"Access_Missing_NotFound", testAccessMissing},
}

// --- helpers ---

func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("%s: err = %v, want ErrInvalid and not ErrUnavailable", what, err)
	}
}

func createReq(u store.UserKey, id string, now time.Time, roles ...string) store.CreateUserRequest {
	return store.CreateUserRequest{User: u, ID: id, Phone: phone, Now: now, Roles: roles}
}

func createUser(t *testing.T, s store.Store, req store.CreateUserRequest) (store.User, bool) {
	t.Helper()
	u, created, err := s.CreateUser(t.Context(), req)
	if err != nil {
		t.Fatalf("CreateUser(%s): %v", req.ID, err)
	}
	return u, created
}

func updateUser(t *testing.T, s store.Store, u store.UserKey, upd store.UserUpdate) store.User {
	t.Helper()
	got, ok, err := s.UpdateUser(t.Context(), u, upd)
	if err != nil || !ok {
		t.Fatalf("UpdateUser: found=%v err=%v", ok, err)
	}
	return got
}

func getUser(t *testing.T, s store.Store, u store.UserKey) store.User {
	t.Helper()
	got, ok, err := s.User(t.Context(), u)
	if err != nil || !ok {
		t.Fatalf("User: found=%v err=%v", ok, err)
	}
	return got
}

func wantNoUser(t *testing.T, s store.Store, u store.UserKey) {
	t.Helper()
	if got, ok, err := s.User(t.Context(), u); err != nil || ok {
		t.Fatalf("User = %+v found=%v err=%v, want none", got, ok, err)
	}
}

func wantNoSession(t *testing.T, s store.Store, u store.UserKey, id string) {
	t.Helper()
	if _, ok, err := s.Session(t.Context(), u, id); err != nil || ok {
		t.Fatalf("Session %s: found=%v err=%v, want none", id, ok, err)
	}
}

// ban bans u until the given time, as an administrator does at now.
func ban(t *testing.T, s store.Store, u store.UserKey, until, now time.Time) store.User {
	t.Helper()
	return updateUser(t, s, u, store.UserUpdate{Now: now, BannedUntil: &until})
}

// listedLogin signs in the first time a phone of the users list, whose
// user gets OriginList.
func listedLogin(t *testing.T, s store.Store, u store.UserKey, sessionID string, now time.Time) store.ConsumeResult {
	t.Helper()
	req := sendReq(u, "ch-"+sessionID, now)
	req.Challenge.Origin = store.OriginList
	req.ListedOK = true
	wantSent(t, s, req)
	creq := consumeReq(u, "ch-"+sessionID, sessionID, now)
	creq.ListedOK = true
	res := consume(t, s, creq)
	wantConsume(t, res, store.ConsumeOK)
	return res
}

func listUsers(t *testing.T, s store.Store, offset, limit int) ([]store.UserEntry, int) {
	t.Helper()
	entries, total, err := s.ListUsers(t.Context(), offset, limit)
	if err != nil {
		t.Fatalf("ListUsers(%d, %d): %v", offset, limit, err)
	}
	return entries, total
}

func entryIDs(entries []store.UserEntry) []string {
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.User.ID
	}
	return ids
}

func wantUserByID(t *testing.T, s store.Store, id string, key store.UserKey) store.User {
	t.Helper()
	e, ok, err := s.UserByID(t.Context(), id)
	if err != nil || !ok {
		t.Fatalf("UserByID(%s): found=%v err=%v", id, ok, err)
	}
	if e.Key != key || e.User.ID != id {
		t.Fatalf("UserByID(%s) = key %s user %s, want key %s", id, e.Key, e.User.ID, key)
	}
	return e.User
}

func wantNoUserByID(t *testing.T, s store.Store, id string) {
	t.Helper()
	if e, ok, err := s.UserByID(t.Context(), id); err != nil || ok {
		t.Fatalf("UserByID(%q) = %+v found=%v err=%v, want none", id, e, ok, err)
	}
}

func sessions(t *testing.T, s store.Store, u store.UserKey, now time.Time) []store.Session {
	t.Helper()
	list, err := s.Sessions(t.Context(), u, now)
	if err != nil {
		t.Fatalf("Sessions: %v", err)
	}
	return list
}

func sessionIDs(list []store.Session) []string {
	ids := make([]string, len(list))
	for i, sess := range list {
		ids[i] = sess.ID
	}
	return ids
}

func rotateInactive(t *testing.T, s store.Store, u store.UserKey, oldHash, newHash string, inactivity time.Duration, now time.Time) store.RotateResult {
	t.Helper()
	res, err := s.Rotate(t.Context(), store.RotateRequest{
		User: u, OldHash: oldHash, NewHash: newHash, Now: now, ReuseInterval: 10 * time.Second, Inactivity: inactivity,
	})
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	return res
}

func deleteUser(t *testing.T, s store.Store, u store.UserKey, now time.Time) (store.User, []string) {
	t.Helper()
	got, revoked, ok, err := s.DeleteUser(t.Context(), u, now)
	if err != nil || !ok {
		t.Fatalf("DeleteUser: found=%v err=%v", ok, err)
	}
	return got, revoked
}

// --- User ---

func testUserUnknown(t *testing.T, s store.Store) {
	if _, ok, err := s.User(t.Context(), alice); err != nil || ok {
		t.Fatalf("User: found=%v err=%v, want not found", ok, err)
	}
}

// --- BeginSend ---

func testBeginSendBanned(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	banEnd := at(time.Hour)
	ban(t, s, alice, banEnd, at(time.Second))
	mk := func(id string, d time.Duration, requireUser bool) store.SendRequest {
		r := sendReq(alice, id, at(d))
		r.RequireUser = requireUser
		r.Cooldown = 30 * time.Second
		r.PhoneLimit = store.Limit{N: 3, Window: 5 * time.Minute} // the login used one
		return r
	}
	res := send(t, s, mk("c1", time.Minute, true))
	wantStatus(t, res, store.SendBanned)
	wantNoChallenge(t, s, alice)
	// counted like an unknown user: the cooldown started...
	res = send(t, s, mk("c2", time.Minute+10*time.Second, false))
	wantStatus(t, res, store.SendCooldown)
	if res.RetryAfter != 20*time.Second {
		t.Fatalf("RetryAfter = %v, want 20s", res.RetryAfter)
	}
	// ...and the limit is used
	wantStatus(t, send(t, s, mk("c3", 2*time.Minute, false)), store.SendBanned)
	wantStatus(t, send(t, s, mk("c4", 3*time.Minute, false)), store.SendPhoneLimited)
	wantNoChallenge(t, s, alice)
	// the ban ends at BannedUntil
	wantSent(t, s, mk("c5", time.Hour, true))
	wantChallengeID(t, s, alice, "c5")
	if _, ok, _ := s.Session(t.Context(), alice, "s1"); !ok {
		t.Fatal("a refused send ended the user's session")
	}
}

func testBeginSendListed(t *testing.T, s store.Store) {
	listedLogin(t, s, alice, "s1", at(0))
	req := sendReq(alice, "c1", at(time.Minute))
	req.RequireUser = true
	req.Challenge.CreateUser = false
	wantStatus(t, send(t, s, req), store.SendUnknownUser)
	wantNoChallenge(t, s, alice)

	req = sendReq(alice, "c2", at(2*time.Minute))
	req.RequireUser = true
	req.Challenge.CreateUser = false
	req.ListedOK = true
	wantSent(t, s, req)
	wantChallengeID(t, s, alice, "c2")

	// ListedOK concerns users of the list only
	login(t, s, bob, "s2", at(0))
	req = sendReq(bob, "c3", at(time.Minute))
	req.RequireUser = true
	req.Challenge.CreateUser = false
	wantSent(t, s, req)
}

func testBeginSendOrigin(t *testing.T, s store.Store) {
	req := sendReq(alice, "c1", at(0))
	req.Challenge.Origin = store.OriginList
	res := wantSent(t, s, req)
	sameChallenge(t, "result challenge", res.Challenge, req.Challenge)
	sameChallenge(t, "stored challenge", wantChallengeID(t, s, alice, "c1"), req.Challenge)

	// kept on resend, like CreateUser, whatever the resend asks
	for i, origin := range []string{"", store.OriginSignup} {
		r := resendReq(alice, fmt.Sprint("r", i), at(time.Duration(i+1)*time.Minute))
		r.Challenge.Origin = origin
		res = wantSent(t, s, r)
		if res.Challenge.Origin != store.OriginList {
			t.Fatalf("resend %d: Origin = %q, want %q", i, res.Challenge.Origin, store.OriginList)
		}
		if c := wantChallengeID(t, s, alice, r.Challenge.ID); c.Origin != store.OriginList {
			t.Fatalf("stored after resend %d: Origin = %q, want %q", i, c.Origin, store.OriginList)
		}
	}

	// no origin: none stored (the user it creates gets OriginSignup)
	res = wantSent(t, s, sendReq(bob, "b1", at(0)))
	if res.Challenge.Origin != "" {
		t.Fatalf("Origin = %q, want empty", res.Challenge.Origin)
	}
}

// --- Consume ---

func testConsumeBanned(t *testing.T, s store.Store) {
	first := login(t, s, alice, "s1", at(0))
	wantSent(t, s, sendReq(alice, "c2", at(time.Minute)))
	attempt(t, s, alice, 5, at(time.Minute+time.Second))
	banEnd := at(time.Hour)
	ban(t, s, alice, banEnd, at(2*time.Minute)) // banned after the code was sent
	res := consume(t, s, consumeReq(alice, "c2", "s2", at(3*time.Minute)))
	wantConsume(t, res, store.ConsumeBanned)
	if res.User.ID != first.User.ID || !res.User.BannedUntil.Equal(banEnd) {
		t.Fatalf("User = %+v, want %s banned until %v", res.User, first.User.ID, banEnd)
	}
	wantNoSession(t, s, alice, "s2")
	wantNoChallenge(t, s, alice)
	if u := getUser(t, s, alice); !u.LastSignInAt.Equal(at(0)) {
		t.Fatalf("LastSignInAt = %v, want the last real sign-in %v", u.LastSignInAt, at(0))
	}
	wantRotate(t, rotate(t, s, alice, "rt-s2", "rt-x", 0, at(4*time.Minute)), store.RotateNotFound)

	// the ban ends at BannedUntil
	wantSent(t, s, sendReq(alice, "c3", banEnd))
	wantConsume(t, consume(t, s, consumeReq(alice, "c3", "s3", banEnd)), store.ConsumeOK)
}

func testConsumeListed(t *testing.T, s store.Store) {
	first := listedLogin(t, s, alice, "s1", at(0))
	wantSent(t, s, sendReq(alice, "c2", at(time.Minute)))
	wantConsume(t, consume(t, s, consumeReq(alice, "c2", "s2", at(time.Minute))), store.ConsumeNoUser)
	wantNoSession(t, s, alice, "s2")
	wantNoChallenge(t, s, alice)
	if u := getUser(t, s, alice); !u.LastSignInAt.Equal(at(0)) || u.ID != first.User.ID {
		t.Fatalf("User = %+v: want it kept as it was", u)
	}

	wantSent(t, s, sendReq(alice, "c3", at(2*time.Minute)))
	req := consumeReq(alice, "c3", "s3", at(2*time.Minute))
	req.ListedOK = true
	res := consume(t, s, req)
	wantConsume(t, res, store.ConsumeOK)
	if res.Created || res.User.ID != first.User.ID || res.User.Origin != store.OriginList {
		t.Fatalf("Consume = %+v, want the existing user of the list", res)
	}
}

func testConsumeOrigin(t *testing.T, s store.Store) {
	if u := listedLogin(t, s, alice, "s1", at(0)).User; u.Origin != store.OriginList {
		t.Fatalf("Origin = %q, want %q", u.Origin, store.OriginList)
	}
	if u := getUser(t, s, alice); u.Origin != store.OriginList {
		t.Fatalf("stored Origin = %q, want %q", u.Origin, store.OriginList)
	}
	if u := login(t, s, bob, "s2", at(0)).User; u.Origin != store.OriginSignup {
		t.Fatalf("Origin without one in the challenge = %q, want %q", u.Origin, store.OriginSignup)
	}
	// an existing user keeps its origin
	req := sendReq(bob, "c3", at(time.Hour))
	req.Challenge.Origin = store.OriginList
	wantSent(t, s, req)
	if u := consume(t, s, consumeReq(bob, "c3", "s3", at(time.Hour))).User; u.Origin != store.OriginSignup {
		t.Fatalf("Origin after a later sign-in = %q, want %q", u.Origin, store.OriginSignup)
	}
}

func testConsumeIndexes(t *testing.T, s store.Store) {
	a := login(t, s, alice, "s1", at(0)).User
	b := login(t, s, bob, "s2", at(time.Second)).User
	sameUser(t, "alice by ID", wantUserByID(t, s, a.ID, alice), a)
	sameUser(t, "bob by ID", wantUserByID(t, s, b.ID, bob), b)
	login(t, s, alice, "s3", at(time.Hour)) // a sign-in does not index twice
	entries, total := listUsers(t, s, 0, 10)
	if total != 2 {
		t.Fatalf("total = %d, want 2", total)
	}
	wantIDs(t, "ListUsers", entryIDs(entries), "user-s1", "user-s2")
	if entries[0].Key != alice || entries[1].Key != bob {
		t.Fatalf("keys = %s %s, want %s %s", entries[0].Key, entries[1].Key, alice, bob)
	}
	if !entries[0].User.LastSignInAt.Equal(at(time.Hour)) {
		t.Fatalf("listed LastSignInAt = %v, want the latest sign-in", entries[0].User.LastSignInAt)
	}
}

// The NewUser hint only prepares: a wrong hint changes no result and
// leaves no phantom in the index.
func testConsumeNewUserHint(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	req := consumeReq(alice, "c1", "s1", at(time.Second))
	req.NewUser = true
	res := consume(t, s, req)
	wantConsume(t, res, store.ConsumeOK)
	if !res.Created {
		t.Fatal("not created")
	}
	wantSent(t, s, sendReq(alice, "c2", at(time.Hour)))
	req = consumeReq(alice, "c2", "s2", at(time.Hour))
	req.NewUserID = "user-phantom"
	req.NewUser = true // wrong: alice exists
	again := consume(t, s, req)
	wantConsume(t, again, store.ConsumeOK)
	if again.Created || again.User.ID != res.User.ID {
		t.Fatalf("a wrong hint changed the result: %+v", again)
	}
	entries, total := listUsers(t, s, 0, 10)
	if total != 1 || len(entries) != 1 || entries[0].User.ID != res.User.ID {
		t.Fatalf("index after a wrong hint: %d %+v", total, entries)
	}
}

func testChallengeHasUser(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	if c := wantChallengeID(t, s, alice, "c1"); c.HasUser {
		t.Fatal("HasUser before the user exists")
	}
	login(t, s, alice, "s1", at(time.Second))
	wantSent(t, s, sendReq(alice, "c2", at(time.Hour)))
	if c := wantChallengeID(t, s, alice, "c2"); !c.HasUser {
		t.Fatal("HasUser false for an existing user")
	}
}

func testConsumeSessionDetails(t *testing.T, s store.Store) {
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	req := consumeReq(alice, "c1", "s1", at(time.Second))
	req.Session.IP = "2001:db8::7"
	req.Session.UserAgent = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
	res := consume(t, s, req)
	wantConsume(t, res, store.ConsumeOK)
	sameSession(t, "session", getSession(t, s, alice, "s1"), store.Session{
		ID: "s1", User: alice, UserID: res.User.ID, CreatedAt: at(time.Second),
		ExpiresAt: req.Session.ExpiresAt, IP: req.Session.IP, UserAgent: req.Session.UserAgent,
	})

	// an overlong User-Agent is cut to 512 bytes, never inside a character
	wantSent(t, s, sendReq(alice, "c2", at(time.Minute)))
	req = consumeReq(alice, "c2", "s2", at(time.Minute))
	req.Session.UserAgent = strings.Repeat("a", 511) + "é" + strings.Repeat("b", 100)
	wantConsume(t, consume(t, s, req), store.ConsumeOK)
	if ua := getSession(t, s, alice, "s2").UserAgent; ua != strings.Repeat("a", 511) {
		t.Fatalf("UserAgent of %d bytes, want the 511 bytes before the cut character", len(ua))
	}
}

// --- CreateUser ---

func testCreateUser(t *testing.T, s store.Store) {
	now := at(time.Minute)
	req := createReq(alice, "u-alice", now, "staff", "admin", "staff")
	req.Metadata = meta
	u, created := createUser(t, s, req)
	if !created {
		t.Fatal("created = false, want true")
	}
	want := store.User{
		ID: "u-alice", Phone: phone, CreatedAt: now, UpdatedAt: now, Metadata: meta,
		Roles: []string{"admin", "staff"}, Origin: store.OriginAdmin,
	}
	sameUser(t, "result", u, want)
	sameUser(t, "stored", getUser(t, s, alice), want)
	sameUser(t, "by ID", wantUserByID(t, s, "u-alice", alice), want)
	entries, total := listUsers(t, s, 0, 10)
	if total != 1 || len(entries) != 1 || entries[0].Key != alice {
		t.Fatalf("ListUsers = %+v total %d, want alice alone", entries, total)
	}
	sameUser(t, "listed", entries[0].User, want)

	req = createReq(bob, "u-bob", now)
	req.Confirmed = true
	u, _ = createUser(t, s, req)
	if !u.ConfirmedAt.Equal(now) || u.Roles != nil || u.Metadata != nil {
		t.Fatalf("confirmed user without roles = %+v", u)
	}
}

func testCreateUserExisting(t *testing.T, s store.Store) {
	first := login(t, s, alice, "s1", at(0)).User
	u, created := createUser(t, s, createReq(alice, "u-other", at(time.Minute), "staff"))
	if created {
		t.Fatal("created = true for a person with a user")
	}
	sameUser(t, "existing signed-up user", u, first)

	b, _ := createUser(t, s, createReq(bob, "u-bob", at(0), "staff"))
	again, created := createUser(t, s, createReq(bob, "u-bob-2", at(time.Minute)))
	if created {
		t.Fatal("second CreateUser created")
	}
	sameUser(t, "second CreateUser", again, b)
	sameUser(t, "stored", getUser(t, s, bob), b)
	entries, total := listUsers(t, s, 0, 10)
	if total != 2 {
		t.Fatalf("total = %d, want 2", total)
	}
	wantIDs(t, "ListUsers", entryIDs(entries), "u-bob", "user-s1")
	wantNoUserByID(t, s, "u-other")
	wantNoUserByID(t, s, "u-bob-2")
}

func testCreateUserSignsIn(t *testing.T, s store.Store) {
	invited, _ := createUser(t, s, createReq(alice, "u-alice", at(0), "staff"))
	req := sendReq(alice, "c1", at(time.Hour))
	req.RequireUser = true
	req.Challenge.CreateUser = false
	wantSent(t, s, req)
	res := consume(t, s, consumeReq(alice, "c1", "s1", at(time.Hour)))
	wantConsume(t, res, store.ConsumeOK)
	want := invited
	want.ConfirmedAt, want.UpdatedAt, want.LastSignInAt = at(time.Hour), at(time.Hour), at(time.Hour)
	if res.Created {
		t.Fatal("Created = true for an invited user")
	}
	sameUser(t, "first sign-in", res.User, want)
	if sess := getSession(t, s, alice, "s1"); sess.UserID != "u-alice" {
		t.Fatalf("session UserID = %s, want u-alice", sess.UserID)
	}
}

func testCreateUserInvalid(t *testing.T, s store.Store) {
	bad := map[string]func(r *store.CreateUserRequest){
		"empty user":        func(r *store.CreateUserRequest) { r.User = "" },
		"empty id":          func(r *store.CreateUserRequest) { r.ID = "" },
		"id with colon":     func(r *store.CreateUserRequest) { r.ID = "a:b" },
		"empty phone":       func(r *store.CreateUserRequest) { r.Phone = "" },
		"zero now":          func(r *store.CreateUserRequest) { r.Now = time.Time{} },
		"empty role":        func(r *store.CreateUserRequest) { r.Roles = []string{"staff", ""} },
		"role with a comma": func(r *store.CreateUserRequest) { r.Roles = []string{"a,b"} },
	}
	for name, mutate := range bad {
		req := createReq(alice, "u-alice", at(0))
		mutate(&req)
		_, _, err := s.CreateUser(t.Context(), req)
		wantInvalid(t, name, err)
	}
	wantNoUser(t, s, alice)
	if _, total := listUsers(t, s, 0, 10); total != 0 {
		t.Fatalf("total = %d after refused requests, want 0", total)
	}
	wantSent(t, s, sendReq(alice, "c1", at(0)))
	req := consumeReq(alice, "c1", "s1", at(0))
	req.NewUserID = "a:b"
	_, err := s.Consume(t.Context(), req)
	wantInvalid(t, "Consume with a new user id with colon", err)
}

// --- UpdateUser ---

func testUpdateUserRoles(t *testing.T, s store.Store) {
	created, _ := createUser(t, s, createReq(alice, "u-alice", at(0)))
	roles := []string{"z", "a", "z", "m"}
	u := updateUser(t, s, alice, store.UserUpdate{Now: at(time.Minute), Roles: &roles})
	want := created
	want.Roles, want.UpdatedAt = []string{"a", "m", "z"}, at(time.Minute)
	sameUser(t, "result", u, want)
	sameUser(t, "stored", getUser(t, s, alice), want)
	if roles[0] != "z" {
		t.Fatal("UpdateUser changed the caller's slice")
	}
	none := []string{}
	u = updateUser(t, s, alice, store.UserUpdate{Now: at(2 * time.Minute), Roles: &none})
	if u.Roles != nil {
		t.Fatalf("Roles = %q after clearing, want nil", u.Roles)
	}
	bad := []string{"a,b"}
	_, _, err := s.UpdateUser(t.Context(), alice, store.UserUpdate{Now: at(3 * time.Minute), Roles: &bad})
	wantInvalid(t, "role with a comma", err)
}

func testUpdateUserBan(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	until := at(24 * time.Hour)
	u := ban(t, s, alice, until, at(time.Minute))
	if !u.BannedUntil.Equal(until) || !u.Banned(at(time.Minute)) || u.Banned(until) {
		t.Fatalf("BannedUntil = %v, want %v", u.BannedUntil, until)
	}
	if got := getUser(t, s, alice); !got.BannedUntil.Equal(until) {
		t.Fatalf("stored BannedUntil = %v, want %v", got.BannedUntil, until)
	}
	u = ban(t, s, alice, time.Time{}, at(2*time.Minute))
	if !u.BannedUntil.IsZero() || u.Banned(at(2*time.Minute)) {
		t.Fatalf("BannedUntil = %v after lifting, want zero", u.BannedUntil)
	}
	if got := getUser(t, s, alice); !got.BannedUntil.IsZero() {
		t.Fatalf("stored BannedUntil = %v after lifting, want zero", got.BannedUntil)
	}
	wantSent(t, s, sendReq(alice, "c2", at(3*time.Minute)))
	wantConsume(t, consume(t, s, consumeReq(alice, "c2", "s2", at(3*time.Minute))), store.ConsumeOK)
}

func testUpdateUserMetadata(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	gold := []byte(`{"plan":"gold"}`)
	if u := updateUser(t, s, alice, store.UserUpdate{Now: at(time.Minute), Metadata: &gold}); string(u.Metadata) != string(gold) {
		t.Fatalf("Metadata = %s, want %s", u.Metadata, gold)
	}
	gold[2] = 'X' // the store keeps its own copy
	if u := getUser(t, s, alice); string(u.Metadata) != `{"plan":"gold"}` {
		t.Fatalf("stored Metadata = %s", u.Metadata)
	}
	var empty []byte
	if u := updateUser(t, s, alice, store.UserUpdate{Now: at(2 * time.Minute), Metadata: &empty}); u.Metadata != nil {
		t.Fatalf("Metadata = %s after clearing, want nil", u.Metadata)
	}
	if u := getUser(t, s, alice); u.Metadata != nil {
		t.Fatalf("stored Metadata = %s after clearing, want nil", u.Metadata)
	}
}

func testUpdateUserConfirmed(t *testing.T, s store.Store) {
	createUser(t, s, createReq(alice, "u-alice", at(0)))
	if u := updateUser(t, s, alice, store.UserUpdate{Now: at(time.Minute), Confirmed: true}); !u.ConfirmedAt.Equal(at(time.Minute)) {
		t.Fatalf("ConfirmedAt = %v, want %v", u.ConfirmedAt, at(time.Minute))
	}
	if u := updateUser(t, s, alice, store.UserUpdate{Now: at(time.Hour), Confirmed: true}); !u.ConfirmedAt.Equal(at(time.Minute)) {
		t.Fatalf("ConfirmedAt = %v after a second confirmation, want the first %v", u.ConfirmedAt, at(time.Minute))
	}
}

func testUpdateUserNil(t *testing.T, s store.Store) {
	req := createReq(alice, "u-alice", at(0), "staff")
	req.Metadata = meta
	created, _ := createUser(t, s, req)
	ban(t, s, alice, at(time.Hour), at(time.Second))
	u := updateUser(t, s, alice, store.UserUpdate{Now: at(time.Minute)})
	want := created
	want.UpdatedAt, want.BannedUntil = at(time.Minute), at(time.Hour)
	sameUser(t, "after an empty update", u, want)
}

func testUpdateUserUnknown(t *testing.T, s store.Store) {
	roles := []string{"staff"}
	u, ok, err := s.UpdateUser(t.Context(), alice, store.UserUpdate{Now: at(0), Roles: &roles, Confirmed: true})
	if err != nil || ok {
		t.Fatalf("UpdateUser = %+v found=%v err=%v, want not found", u, ok, err)
	}
	wantNoUser(t, s, alice)
	_, _, err = s.UpdateUser(t.Context(), alice, store.UserUpdate{})
	wantInvalid(t, "zero now", err)
}

// --- DeleteUser ---

func testDeleteUserErases(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	login(t, s, alice, "s2", at(time.Second))
	wantRotate(t, rotate(t, s, alice, "rt-s1", "rt-2", 0, at(time.Minute)), store.RotateOK)
	login(t, s, bob, "b1", at(0))
	pending := sendReq(alice, "c9", at(2*time.Minute))
	pending.Cooldown = time.Hour
	wantSent(t, s, pending)
	attempt(t, s, alice, 5, at(2*time.Minute+time.Second))
	first := getUser(t, s, alice)

	u, revoked := deleteUser(t, s, alice, at(3*time.Minute))
	sameUser(t, "erased user", u, first)
	wantIDs(t, "DeleteUser revoked", revoked, "s1", "s2")

	wantNoUser(t, s, alice)
	wantNoSession(t, s, alice, "s1")
	wantNoSession(t, s, alice, "s2")
	for _, h := range []string{"rt-s1", "rt-2", "rt-s2"} {
		wantRotate(t, rotate(t, s, alice, h, "rt-new-"+h, time.Minute, at(3*time.Minute)), store.RotateNotFound)
	}
	if _, ok, failures := getChallenge(t, s, alice); ok || failures != 0 {
		t.Fatalf("Challenge found=%v failures=%d, want none and 0", ok, failures)
	}
	wantNoUserByID(t, s, first.ID)
	if list := sessions(t, s, alice, at(3*time.Minute)); len(list) != 0 {
		t.Fatalf("Sessions = %q, want none", sessionIDs(list))
	}
	entries, total := listUsers(t, s, 0, 10)
	if total != 1 {
		t.Fatalf("total = %d, want 1 (bob)", total)
	}
	wantIDs(t, "ListUsers", entryIDs(entries), "user-b1")
	// The cooldown is gone, but the send log stays (3 sends in 5 minutes),
	// so deleting a user does not reset the limit that protects the phone.
	req := sendReq(alice, "c10", at(3*time.Minute+time.Second))
	res := send(t, s, req)
	wantStatus(t, res, store.SendPhoneLimited)
	// the other person is untouched
	wantRotate(t, rotate(t, s, bob, "rt-b1", "rt-b2", 0, at(4*time.Minute)), store.RotateOK)
}

func testDeleteUserActive(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	login(t, s, alice, "s2", at(time.Second))
	wantSent(t, s, sendReq(alice, "ch-s3", at(2*time.Second)))
	short := consumeReq(alice, "ch-s3", "s3", at(2*time.Second))
	short.Session.ExpiresAt = at(time.Minute)
	wantConsume(t, consume(t, s, short), store.ConsumeOK)
	revoke(t, s, alice, store.RevokeOne, "s2", at(10*time.Second))

	_, revoked := deleteUser(t, s, alice, at(time.Minute))
	wantIDs(t, "DeleteUser revoked", revoked, "s1")
	for _, id := range []string{"s1", "s2", "s3"} {
		wantNoSession(t, s, alice, id)
	}
}

func testDeleteUserOptOut(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	if err := s.SetOptOut(t.Context(), alice, true, at(time.Second)); err != nil {
		t.Fatal(err)
	}
	deleteUser(t, s, alice, at(time.Minute))
	wantStatus(t, send(t, s, sendReq(alice, "c2", at(time.Hour))), store.SendOptedOut)
}

func testDeleteUserSignUpAgain(t *testing.T, s store.Store) {
	old := login(t, s, alice, "s1", at(0)).User
	deleteUser(t, s, alice, at(time.Minute))
	res := login(t, s, alice, "s2", at(time.Hour))
	if !res.Created || res.User.ID == old.ID || !res.User.CreatedAt.Equal(at(time.Hour)) {
		t.Fatalf("Consume after DeleteUser = %+v, want a new user", res)
	}
	wantNoUserByID(t, s, old.ID)
	wantUserByID(t, s, res.User.ID, alice)
	entries, total := listUsers(t, s, 0, 10)
	if total != 1 {
		t.Fatalf("total = %d, want 1", total)
	}
	wantIDs(t, "ListUsers", entryIDs(entries), res.User.ID)
}

func testDeleteUserUnknown(t *testing.T, s store.Store) {
	if u, ids, ok, err := s.DeleteUser(t.Context(), alice, at(0)); err != nil || ok || len(ids) != 0 {
		t.Fatalf("DeleteUser = %+v %q found=%v err=%v, want not found", u, ids, ok, err)
	}
	login(t, s, alice, "s1", at(0))
	deleteUser(t, s, alice, at(time.Minute))
	if _, _, ok, err := s.DeleteUser(t.Context(), alice, at(2*time.Minute)); err != nil || ok {
		t.Fatalf("second DeleteUser: found=%v err=%v, want not found", ok, err)
	}
}

// --- ListUsers and UserByID ---

func testListUsersPages(t *testing.T, s store.Store) {
	// created out of ID order, under keys in yet another order
	for i, id := range []string{"u3", "u1", "u5", "u2", "u4"} {
		key := store.UserKey(fmt.Sprintf("key-%d-%s", 9-i, id))
		createUser(t, s, createReq(key, id, at(time.Duration(i)*time.Second)))
	}
	pages := []struct {
		offset, limit int
		want          []string
	}{
		{0, 2, []string{"u1", "u2"}},
		{2, 2, []string{"u3", "u4"}},
		{4, 2, []string{"u5"}},
		{5, 2, nil},
		{1, 100, []string{"u2", "u3", "u4", "u5"}},
		{0, 0, nil},
	}
	for _, p := range pages {
		entries, total := listUsers(t, s, p.offset, p.limit)
		if total != 5 {
			t.Fatalf("ListUsers(%d, %d) total = %d, want 5", p.offset, p.limit, total)
		}
		wantIDs(t, fmt.Sprintf("ListUsers(%d, %d)", p.offset, p.limit), entryIDs(entries), p.want...)
		for _, e := range entries {
			if !strings.HasSuffix(string(e.Key), "-"+e.User.ID) {
				t.Fatalf("entry %s has key %s", e.User.ID, e.Key)
			}
		}
	}
}

func testListUsersInvalid(t *testing.T, s store.Store) {
	_, _, err := s.ListUsers(t.Context(), -1, 10)
	wantInvalid(t, "negative offset", err)
	_, _, err = s.ListUsers(t.Context(), 0, -1)
	wantInvalid(t, "negative limit", err)
	if entries, total := listUsers(t, s, 0, 10); len(entries) != 0 || total != 0 {
		t.Fatalf("empty store: %d entries, total %d", len(entries), total)
	}
}

func testUserByID(t *testing.T, s store.Store) {
	createUser(t, s, createReq(alice, "u-1", at(0)))
	createUser(t, s, createReq(bob, "u-10", at(0)))
	// an ID that is a prefix of another finds only itself
	wantUserByID(t, s, "u-1", alice)
	wantUserByID(t, s, "u-10", bob)
	u := updateUser(t, s, alice, store.UserUpdate{Now: at(time.Minute), Roles: &[]string{"staff"}})
	sameUser(t, "after an update", wantUserByID(t, s, "u-1", alice), u)
}

func testUserByIDUnknown(t *testing.T, s store.Store) {
	wantNoUserByID(t, s, "u-1")
	createUser(t, s, createReq(alice, "u-10", at(0)))
	for _, id := range []string{"", "u-1", "u-100", "u", "u-10:" + string(alice)} {
		wantNoUserByID(t, s, id)
	}
}

// --- Sessions ---

func testSessions(t *testing.T, s store.Store) {
	signIn := func(id, ip, ua string, now time.Time, life time.Duration) {
		t.Helper()
		send := sendReq(alice, "ch-"+id, now)
		send.PhoneLimit.N = 10
		wantSent(t, s, send)
		req := consumeReq(alice, "ch-"+id, id, now)
		req.Session.IP, req.Session.UserAgent = ip, ua
		req.Session.ExpiresAt = now.Add(life)
		wantConsume(t, consume(t, s, req), store.ConsumeOK)
	}
	day := 24 * time.Hour
	signIn("sb", "192.0.2.1", "Firefox", at(0), 30*day)
	signIn("sa", "192.0.2.2", "Safari", at(time.Second), 30*day)
	signIn("revoked", "192.0.2.3", "Chrome", at(2*time.Second), 30*day)
	signIn("short", "192.0.2.4", "Edge", at(3*time.Second), time.Minute)
	revoke(t, s, alice, store.RevokeOne, "revoked", at(10*time.Second))
	wantRotate(t, rotate(t, s, alice, "rt-sa", "rt-sa2", 0, at(30*time.Second)), store.RotateOK)
	login(t, s, bob, "b1", at(0))

	list := sessions(t, s, alice, at(2*time.Minute))
	wantIDs(t, "Sessions", sessionIDs(list), "sb", "sa") // oldest first, not by ID
	uid := getUser(t, s, alice).ID
	sameSession(t, "sb", list[0], store.Session{
		ID: "sb", User: alice, UserID: uid, CreatedAt: at(0), ExpiresAt: at(30 * day),
		IP: "192.0.2.1", UserAgent: "Firefox",
	})
	sameSession(t, "sa", list[1], store.Session{
		ID: "sa", User: alice, UserID: uid, CreatedAt: at(time.Second), ExpiresAt: at(time.Second + 30*day),
		RefreshedAt: at(30 * time.Second), IP: "192.0.2.2", UserAgent: "Safari",
	})
	wantIDs(t, "Sessions while the short one lasts", sessionIDs(sessions(t, s, alice, at(3*time.Second+time.Minute-time.Millisecond))), "sb", "sa", "short")
	wantIDs(t, "Sessions at sb's end", sessionIDs(sessions(t, s, alice, at(30*day))), "sa")
	if list := sessions(t, s, "nobody-key", at(0)); len(list) != 0 {
		t.Fatalf("Sessions of an unknown person = %q", sessionIDs(list))
	}
}

// --- Rotate: refresh time and inactivity ---

func testRotateRefreshed(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	res := rotate(t, s, alice, "rt-s1", "rt-2", 10*time.Second, at(time.Minute))
	wantRotate(t, res, store.RotateOK)
	if !res.Session.RefreshedAt.Equal(at(time.Minute)) {
		t.Fatalf("RefreshedAt = %v, want %v", res.Session.RefreshedAt, at(time.Minute))
	}
	if got := getSession(t, s, alice, "s1").RefreshedAt; !got.Equal(at(time.Minute)) {
		t.Fatalf("stored RefreshedAt = %v, want %v", got, at(time.Minute))
	}
	// a sibling within the reuse interval refreshes too
	res = rotate(t, s, alice, "rt-s1", "rt-3", 10*time.Second, at(time.Minute+5*time.Second))
	wantRotate(t, res, store.RotateOK)
	if !res.Session.RefreshedAt.Equal(at(time.Minute + 5*time.Second)) {
		t.Fatalf("sibling RefreshedAt = %v", res.Session.RefreshedAt)
	}
	// a reuse does not
	res = rotate(t, s, alice, "rt-s1", "rt-4", 10*time.Second, at(time.Hour))
	wantRotate(t, res, store.RotateReused)
	if !res.Session.RefreshedAt.Equal(at(time.Minute + 5*time.Second)) {
		t.Fatalf("RefreshedAt after a reuse = %v, want the last refresh", res.Session.RefreshedAt)
	}
}

func testRotateIdle(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	login(t, s, alice, "s2", at(0))
	// exactly the limit is still in time
	wantRotate(t, rotateInactive(t, s, alice, "rt-s1", "rt-1b", time.Hour, at(time.Hour)), store.RotateOK)
	idle := at(time.Hour + time.Millisecond)
	res := rotateInactive(t, s, alice, "rt-s2", "rt-2b", time.Hour, idle)
	wantRotate(t, res, store.RotateIdle)
	if res.Session.ID != "s2" || !res.Session.RevokedAt.Equal(idle) {
		t.Fatalf("Session = %+v, want s2 revoked at %v", res.Session, idle)
	}
	if got := getSession(t, s, alice, "s2"); !got.RevokedAt.Equal(idle) {
		t.Fatalf("stored RevokedAt = %v, want %v", got.RevokedAt, idle)
	}
	wantRotate(t, rotateInactive(t, s, alice, "rt-s2", "rt-2c", 0, idle), store.RotateNotFound)
	wantRotate(t, rotateInactive(t, s, alice, "rt-2b", "rt-2c", 0, idle), store.RotateNotFound)
	wantRevoked(t, s, alice, "s1", false)
	// without a limit, age alone never ends a session
	login(t, s, bob, "b1", at(0))
	wantRotate(t, rotateInactive(t, s, bob, "rt-b1", "rt-b2", 0, at(29*24*time.Hour)), store.RotateOK)
}

func testRotateIdleFromRefresh(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	wantRotate(t, rotateInactive(t, s, alice, "rt-s1", "rt-2", time.Hour, at(50*time.Minute)), store.RotateOK)
	wantRotate(t, rotateInactive(t, s, alice, "rt-2", "rt-3", time.Hour, at(100*time.Minute)), store.RotateOK)
	wantRotate(t, rotateInactive(t, s, alice, "rt-3", "rt-4", time.Hour, at(160*time.Minute+time.Millisecond)), store.RotateIdle)
}

func testRotateReusedBeatsIdle(t *testing.T, s store.Store) {
	login(t, s, alice, "s1", at(0))
	wantRotate(t, rotateInactive(t, s, alice, "rt-s1", "rt-2", time.Hour, at(time.Minute)), store.RotateOK)
	// a stolen, used token presented after the session went idle is a reuse
	wantRotate(t, rotateInactive(t, s, alice, "rt-s1", "rt-x", time.Hour, at(3*time.Hour)), store.RotateReused)
}

// --- Access ---

func testAccess(t *testing.T, s store.Store) {
	res := login(t, s, alice, "s1", at(0))
	sess, sok, u, uok, err := s.Access(t.Context(), alice, "s1")
	if err != nil || !sok || !uok {
		t.Fatalf("Access: session %v user %v err %v", sok, uok, err)
	}
	sameSession(t, "session", sess, getSession(t, s, alice, "s1"))
	sameUser(t, "user", u, res.User)

	ban(t, s, alice, at(time.Hour), at(time.Minute))
	revoke(t, s, alice, store.RevokeOne, "s1", at(2*time.Minute))
	sess, _, u, _, err = s.Access(t.Context(), alice, "s1")
	if err != nil || !sess.RevokedAt.Equal(at(2*time.Minute)) || !u.BannedUntil.Equal(at(time.Hour)) {
		t.Fatalf("Access after ban and revoke = %+v %+v %v", sess, u, err)
	}
}

func testAccessMissing(t *testing.T, s store.Store) {
	ctx := t.Context()
	if _, sok, _, uok, err := s.Access(ctx, alice, "s1"); err != nil || sok || uok {
		t.Fatalf("unknown person: session %v user %v err %v", sok, uok, err)
	}
	login(t, s, alice, "s1", at(0))
	if _, sok, u, uok, err := s.Access(ctx, alice, "nope"); err != nil || sok || !uok || u.ID != "user-s1" {
		t.Fatalf("unknown session: session %v user %v (%s) err %v", sok, uok, u.ID, err)
	}
	if _, sok, _, uok, err := s.Access(ctx, bob, "s1"); err != nil || sok || uok {
		t.Fatalf("another person's session: session %v user %v err %v", sok, uok, err)
	}
	deleteUser(t, s, alice, at(time.Minute))
	if _, sok, _, uok, err := s.Access(ctx, alice, "s1"); err != nil || sok || uok {
		t.Fatalf("deleted user: session %v user %v err %v", sok, uok, err)
	}
}
