// Package atomicfile replaces files so that a reader sees the old content or
// the new, never a part, and a failure leaves the old file as it was.
//
// Every file ecr-ptc writes for a person or a peer (hosts.toml, daemon.json,
// the token cache, the saved rule set, a manifest rewritten in place) goes
// through Write, or through Stage and Commit when several files must be
// replaced together. The package never deletes anything but its own
// temporary files, which are named ".NAME.ecr-ptc-*" next to the target so
// that a later run can find and remove the ones a killed process left.
//
// It owns the write-to-temp, fsync, rename and directory-sync sequence and
// the capped reads of files people edit (ReadCapped). It must never follow
// a symbolic link out of the directory it was given, never leave a file
// half-written, and never know what the bytes it writes mean.
package atomicfile
