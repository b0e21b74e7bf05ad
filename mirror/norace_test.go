//go:build !race

package mirror

// raceEnabled is set when the tests run under the race detector.
const raceEnabled = false
