package redisstore

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts, each the text of its lua/ file (see the package
// documentation). Two rules are shared by scripts: the sliding log
// (lua/slidinglog.lua: Hit and BeginSend) and starting a session
// (lua/new_session.lua: Consume and MoveUser's step in). Redis cannot
// include one script in another, so each shared file is put in front of
// the scripts that call it (withLib), and that composed text is what
// Redis loads and names by its SHA.
var (
	//go:embed lua/slidinglog.lua
	slidingLogSrc string
	//go:embed lua/new_session.lua
	newSessionSrc string

	//go:embed lua/hit.lua
	hitSrc    string
	hitScript = redis.NewScript(withLib(slidingLogSrc, hitSrc))

	//go:embed lua/begin_send.lua
	beginSendSrc    string
	beginSendScript = redis.NewScript(withLib(slidingLogSrc, beginSendSrc))

	//go:embed lua/abort_send.lua
	abortSendSrc    string
	abortSendScript = redis.NewScript(abortSendSrc)

	//go:embed lua/challenge.lua
	challengeSrc    string
	challengeScript = redis.NewScript(challengeSrc)

	//go:embed lua/attempt.lua
	attemptSrc    string
	attemptScript = redis.NewScript(attemptSrc)

	//go:embed lua/consume.lua
	consumeSrc    string
	consumeScript = redis.NewScript(withLib(newSessionSrc, consumeSrc))

	//go:embed lua/rotate.lua
	rotateSrc    string
	rotateScript = redis.NewScript(rotateSrc)

	//go:embed lua/revoke.lua
	revokeSrc    string
	revokeScript = redis.NewScript(revokeSrc)

	//go:embed lua/revoked.lua
	revokedSrc    string
	revokedScript = redis.NewScript(revokedSrc)

	//go:embed lua/epoch.lua
	epochSrc    string
	epochScript = redis.NewScript(epochSrc)

	//go:embed lua/announce.lua
	announceSrc    string
	announceScript = redis.NewScript(announceSrc)

	//go:embed lua/opt_out.lua
	optOutSrc    string
	optOutScript = redis.NewScript(optOutSrc)

	//go:embed lua/first_seen.lua
	firstSeenSrc    string
	firstSeenScript = redis.NewScript(firstSeenSrc)

	//go:embed lua/access.lua
	accessSrc    string
	accessScript = redis.NewScript(accessSrc)

	//go:embed lua/create_user.lua
	createUserSrc    string
	createUserScript = redis.NewScript(createUserSrc)

	//go:embed lua/update_user.lua
	updateUserSrc    string
	updateUserScript = redis.NewScript(updateUserSrc)

	//go:embed lua/delete_user.lua
	deleteUserSrc    string
	deleteUserScript = redis.NewScript(deleteUserSrc)

	//go:embed lua/sessions.lua
	sessionsSrc    string
	sessionsScript = redis.NewScript(sessionsSrc)

	//go:embed lua/mark_indexed.lua
	markIndexedSrc    string
	markIndexedScript = redis.NewScript(markIndexedSrc)

	//go:embed lua/claim_move.lua
	claimMoveSrc    string
	claimMoveScript = redis.NewScript(claimMoveSrc)

	//go:embed lua/move_out.lua
	moveOutSrc    string
	moveOutScript = redis.NewScript(moveOutSrc)

	//go:embed lua/move_in.lua
	moveInSrc    string
	moveInScript = redis.NewScript(withLib(newSessionSrc, moveInSrc))

	//go:embed lua/move_finish.lua
	moveFinishSrc    string
	moveFinishScript = redis.NewScript(moveFinishSrc)

	//go:embed lua/moved.lua
	movedSrc    string
	movedScript = redis.NewScript(movedSrc)
)

// withLib puts a shared function's source in front of a script that
// calls it.
func withLib(lib, src string) string {
	return lib + "\n" + src
}
