package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// imdsTimeout bounds the instance metadata lookups of doctor's s3-gateway
// check: off EC2 nothing answers.
const imdsTimeout = 3 * time.Second

// instanceNetwork returns this instance's VPC and subnet (of its primary
// network interface) from the instance metadata.
func instanceNetwork(ctx context.Context, cfg aws.Config) (vpc, subnet string, err error) {
	ctx, cancel := context.WithTimeout(ctx, imdsTimeout)
	defer cancel()
	c := imds.NewFromConfig(cfg)
	get := func(path string) (string, error) {
		out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
		if err != nil {
			return "", fmt.Errorf("instance metadata %q: %w", path, err)
		}
		defer out.Content.Close()
		b, err := io.ReadAll(io.LimitReader(out.Content, 4<<10))
		if err != nil {
			return "", fmt.Errorf("instance metadata %q: %w", path, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	mac, err := get("mac")
	if err != nil {
		return "", "", err
	}
	if vpc, err = get("network/interfaces/macs/" + mac + "/vpc-id"); err != nil {
		return "", "", err
	}
	if subnet, err = get("network/interfaces/macs/" + mac + "/subnet-id"); err != nil {
		return "", "", err
	}
	return vpc, subnet, nil
}
