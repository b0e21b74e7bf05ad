// Package treesnap takes a directory tree's content, mode and owner, for
// tests that prove an edit is undone byte for byte. It is test support
// only.
package treesnap
