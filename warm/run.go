package warm

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ecr-ptc/ecr-ptc/awsapi"
	"github.com/ecr-ptc/ecr-ptc/credentials"
	"github.com/ecr-ptc/ecr-ptc/rewrite"
	"github.com/ecr-ptc/ecr-ptc/rules"
)

// Progress follows a warm run: Start with the number of images, then
// every Event of the warmer, then Stop. A *Display is one.
type Progress interface {
	Start(total int)
	Event(e Event)
	Stop()
}

// Request is one run of `ecr-ptc warm`, as its flags describe it.
type Request struct {
	// Found are the references read from the input. Required.
	Found []Found
	// Mapping holds the account's pull-through cache rules. Required.
	Mapping *rewrite.Mapping
	// Platforms, Jobs, Timeout and StallTimeout are those of Options.
	Platforms             []string
	Jobs                  int
	Timeout, StallTimeout time.Duration
	// Check only asks ECR what it holds (Options.CheckOnly); a reference
	// pinned by digest alone is checked too.
	Check bool
	// Credentials configures the ECR token provider.
	Credentials credentials.Options
	// Progress, if not nil, follows the run.
	Progress Progress
	// Logger receives warnings. Required.
	Logger *slog.Logger
}

// Warm plans the references of req, asks for one ECR token up front (so
// that missing AWS credentials are said once, not for every image), and
// checks or warms each image. It returns the report of every reference;
// a run that ctx cut short reports what it did.
func Warm(ctx context.Context, req Request) (*Report, error) {
	plan := NewPlan(req.Found, req.Mapping)
	images, skipped := targets(plan, req.Check)
	registry := req.Mapping.Registry()
	opts, err := connect(ctx, registry, req)
	if err != nil {
		return nil, err
	}
	opts.Platforms, opts.Jobs, opts.CheckOnly = req.Platforms, req.Jobs, req.Check
	opts.Timeout, opts.StallTimeout, opts.Logger = req.Timeout, req.StallTimeout, req.Logger
	progress := req.Progress
	if progress == nil {
		progress = NewDisplay(nil, "none", true)
	}
	opts.Events = progress.Event
	w, err := New(opts)
	if err != nil {
		return nil, InputError{err}
	}
	progress.Start(len(images))
	results := w.Run(ctx, images)
	progress.Stop()
	return NewReport(registry, results, skipped, plan.Uncovered(), req.Check), nil
}

// targets are the images to warm and the references skipped; with check,
// the references pinned by digest alone are checked too.
func targets(plan Plan, check bool) ([]Image, []Skipped) {
	images := plan.Images
	var skipped []Skipped
	for _, s := range plan.Skipped {
		if im, ok := s.CheckImage(); ok && check {
			images = append(images, im)
			continue
		}
		skipped = append(skipped, s)
	}
	return images, skipped
}

// connect makes the token provider and the ECR API client of registry's
// region, after one token proves the AWS credentials work.
func connect(ctx context.Context, registry string, req Request) (Options, error) {
	copts := req.Credentials
	copts.Logger = req.Logger
	tokens := awsapi.NewProvider(copts)
	reg, err := tokens.Lookup(registry)
	if err != nil {
		return Options{}, fmt.Errorf("registry %q: %w", registry, err)
	}
	tctx, cancel := context.WithTimeout(ctx, req.Timeout)
	_, err = tokens.Get(tctx, registry)
	cancel()
	if err != nil {
		return Options{}, fmt.Errorf("get an ECR token for %s: %s", registry, credentials.Redact(err.Error()))
	}
	api, err := rules.NewAPI(ctx, reg.Region)
	if err != nil {
		return Options{}, err
	}
	return Options{Registry: registry, RegistryID: aws.String(reg.ID), Tokens: tokens, API: api}, nil
}

// SplitPlatforms reads --platform values, each one platform or a
// comma-separated list, dropping empty entries.
func SplitPlatforms(values []string) []string {
	var platforms []string
	for _, p := range values {
		for _, s := range strings.Split(p, ",") {
			if s = strings.TrimSpace(s); s != "" {
				platforms = append(platforms, s)
			}
		}
	}
	return platforms
}
