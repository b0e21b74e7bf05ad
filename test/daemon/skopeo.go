package daemon

import "context"

// Skopeo runs skopeo with args in ns (nil for no namespace) and returns its
// stdout; the error carries its stderr. Pass credentials with --creds or
// --src-creds: they appear in no error or log of this package.
func Skopeo(ctx context.Context, ns *Namespace, args ...string) (string, error) {
	return run(ns.Command(ctx, "skopeo", args...))
}
