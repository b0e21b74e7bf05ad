package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ecr-ptc/ecr-ptc/rules"
)

// ruleView is one row of `ecr-ptc rules`.
type ruleView struct {
	Upstream                 string `json:"upstream"`
	Prefix                   string `json:"prefix"`
	UpstreamRepositoryPrefix string `json:"upstreamRepositoryPrefix,omitempty"`
	UpstreamURL              string `json:"upstreamRegistryUrl"`
	Source                   string `json:"source"`
	NeedsCredentials         bool   `json:"needsCredentials"`
	CredentialARN            string `json:"credentialArn,omitempty"`
}

func newRulesCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Print the pull-through cache rules in effect",
		Long: `rules prints the mapping from upstream registry to ECR repository prefix that
ecr-ptc uses: the account's rules, overridden by the config file's [[rules]]
and by --rule flags. SOURCE says where each rule came from (account, saved,
config, flag); CREDENTIALS says whether ECR needs a Secrets Manager secret for
the upstream.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runRules(cmd.Context()) },
	}
	a.addMappingFlags(cmd)
	cmd.AddCommand(newRulesCreateCmd(a), newRulesGrantCmd(a))
	return cmd
}

// runRules prints the rules in effect as JSON or a table.
func (a *app) runRules(ctx context.Context) error {
	res, err := a.loadRules(ctx)
	if err != nil {
		return err
	}
	m := res.Mapping
	var rows []ruleView
	for _, r := range m.Rules() {
		rows = append(rows, ruleView{r.Upstream, r.Prefix, r.UpstreamRepositoryPrefix, r.UpstreamURL, r.Source, r.NeedsCredentials(), r.CredentialARN})
	}
	if a.json {
		return a.printRulesJSON(res, rows)
	}
	if !a.quiet {
		fmt.Fprintf(a.stdout, "registry: %s\n", m.Registry())
		if res.FromSaved {
			fmt.Fprintf(a.stdout, "warning: ECR API unavailable (%v); showing the rule set saved at %s\n", res.Err, res.SavedAt.Format(time.RFC3339))
		}
	}
	return a.printRulesTable(rows)
}

// printRulesJSON prints the rules of `ecr-ptc rules --json`.
func (a *app) printRulesJSON(res rules.Result, rows []ruleView) error {
	out := struct {
		Registry  string     `json:"registry"`
		FromSaved bool       `json:"fromSaved"`
		SavedAt   *time.Time `json:"savedAt,omitempty"`
		Rules     []ruleView `json:"rules"`
	}{Registry: res.Mapping.Registry(), FromSaved: res.FromSaved, Rules: rows}
	if res.FromSaved {
		out.SavedAt = &res.SavedAt
	}
	if out.Rules == nil {
		out.Rules = []ruleView{}
	}
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// printRulesTable prints one line per rule: upstream, prefix, source and
// whether ECR needs (and has) credentials for the upstream.
func (a *app) printRulesTable(rows []ruleView) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UPSTREAM\tPREFIX\tSOURCE\tCREDENTIALS")
	for _, r := range rows {
		up := r.Upstream
		if r.UpstreamRepositoryPrefix != "" {
			up += "/" + r.UpstreamRepositoryPrefix
		}
		creds := "not needed"
		if r.NeedsCredentials {
			creds = "needed"
			if r.CredentialARN != "" {
				creds = "set"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", up, r.Prefix, r.Source, creds)
	}
	return tw.Flush()
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(a.stdout, "ecr-ptc", version)
			return err
		},
	}
}
