//go:build race

package mirror

// raceEnabled is set when the tests run under the race detector, which
// makes each request about 15 times slower.
const raceEnabled = true
