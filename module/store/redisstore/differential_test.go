package redisstore_test

import (
	"math/rand/v2"
	"testing"

	"github.com/otpgate/otpgate/module/internal/testenv"
	"github.com/otpgate/otpgate/module/store/memstore"
	"github.com/otpgate/otpgate/module/store/storetest"
)

// differentialStores returns a function that runs one program through a
// new memory store and the emptied Redis store of srv.
func differentialStores(tb testing.TB, srv *testenv.Redis) func(t *testing.T, program []byte) {
	r, client, _ := open(tb, srv)
	return func(t *testing.T, program []byte) {
		if err := client.FlushDB(t.Context()).Err(); err != nil {
			t.Fatal(err)
		}
		mem := memstore.New()
		defer mem.Close()
		storetest.Differential(t, mem, r, program)
	}
}

// The memory store and the Redis store give the same result for every
// operation of random sequences.
func TestStores_AgreeOnRandomSequences(t *testing.T) {
	run := differentialStores(t, testenv.StartRedis(t))
	sequences := 60
	if testing.Short() {
		sequences = 10
	}
	for i := range sequences {
		program := storetest.RandomProgram(rand.New(rand.NewPCG(uint64(i), 14)), 150)
		t.Run("", func(t *testing.T) { run(t, program) })
	}
}

// FuzzStores_AgreeOnEveryOperation looks for an operation sequence on which
// the memory store and the Redis store disagree:
//
//	go test -run '^$' -fuzz FuzzStores_AgreeOnEveryOperation ./module/store/redisstore/
func FuzzStores_AgreeOnEveryOperation(f *testing.F) {
	f.Add([]byte{})
	for i := range 8 {
		f.Add(storetest.RandomProgram(rand.New(rand.NewPCG(uint64(i), 1)), 100))
	}
	run := differentialStores(f, testenv.StartRedis(f))
	f.Fuzz(run)
}
