package doctor

import (
	"context"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ecr-ptc/ecr-ptc/awsapi"
)

// EC2API is the part of the EC2 API the s3-gateway check calls.
type EC2API interface {
	DescribeRouteTables(ctx context.Context, in *ec2.DescribeRouteTablesInput, opts ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error)
	DescribeVpcEndpoints(ctx context.Context, in *ec2.DescribeVpcEndpointsInput, opts ...func(*ec2.Options)) (*ec2.DescribeVpcEndpointsOutput, error)
}

// checkS3Gateway looks for an S3 gateway endpoint in the route table of
// this instance's subnet. ECR's layer bucket is S3: without the endpoint,
// the bytes "from the cache" still cross the NAT gateway and pay its
// per-GB processing charge. A gateway endpoint does not change DNS, so
// only the route table tells.
func (d *Doctor) checkS3Gateway(ctx context.Context, _ *state) Result {
	switch {
	case d.Region == "":
		return Result{Status: Skip, Detail: "no region known (see aws-identity)"}
	case d.EC2 == nil:
		return Result{Status: Skip, Detail: "no EC2 API client"}
	case d.Subnet == "" || d.VPC == "":
		detail := "the instance's subnet is unknown"
		if d.NetworkErr != nil {
			detail += ": " + oneLine(d.NetworkErr)
		}
		return Result{Status: Skip, Detail: detail + " (not on EC2, or instance metadata is off)"}
	}
	filter := func(name, value string) ec2types.Filter {
		return ec2types.Filter{Name: aws.String(name), Values: []string{value}}
	}
	// The subnet's own route table, else the VPC's main one.
	rts, err := d.EC2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{filter("association.subnet-id", d.Subnet)}})
	if err == nil && len(rts.RouteTables) == 0 {
		rts, err = d.EC2.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []ec2types.Filter{filter("vpc-id", d.VPC), filter("association.main", "true")}})
	}
	if err != nil {
		return ec2Warn(err, "ec2:DescribeRouteTables")
	}
	if len(rts.RouteTables) == 0 {
		return Result{Status: Warn, Detail: "found no route table for subnet " + d.Subnet + " in " + d.VPC,
			Fix: "check the subnet's route table in the VPC console"}
	}
	rt := rts.RouteTables[0]
	rtID := aws.ToString(rt.RouteTableId)
	service := "com.amazonaws." + d.Region + ".s3"
	eps, err := d.EC2.DescribeVpcEndpoints(ctx, &ec2.DescribeVpcEndpointsInput{Filters: []ec2types.Filter{
		filter("vpc-id", d.VPC), filter("service-name", service), filter("vpc-endpoint-type", "Gateway"),
	}})
	if err != nil {
		return ec2Warn(err, "ec2:DescribeVpcEndpoints")
	}
	var routed []string
	for _, r := range rt.Routes {
		if r.DestinationPrefixListId != nil && strings.HasPrefix(aws.ToString(r.GatewayId), "vpce-") {
			routed = append(routed, aws.ToString(r.GatewayId))
		}
	}
	for _, ep := range eps.VpcEndpoints {
		id := aws.ToString(ep.VpcEndpointId)
		if slices.Contains(ep.RouteTableIds, rtID) || slices.Contains(routed, id) {
			return Result{Status: Pass, Detail: "route table " + rtID + " of " + d.Subnet + " routes S3 to gateway endpoint " + id + ": layers from the cache do not cross the NAT gateway"}
		}
	}
	fix := "aws ec2 create-vpc-endpoint --vpc-id " + d.VPC + " --service-name " + service + " --route-table-ids " + rtID + " (gateway endpoints cost nothing)"
	if len(eps.VpcEndpoints) > 0 {
		fix = "aws ec2 modify-vpc-endpoint --vpc-endpoint-id " + aws.ToString(eps.VpcEndpoints[0].VpcEndpointId) + " --add-route-table-ids " + rtID
	}
	return Result{Status: Warn,
		Detail: "route table " + rtID + " of " + d.Subnet + " has no route to an S3 gateway endpoint: layers \"from the cache\" (ECR's S3 bucket) go through the NAT gateway and pay its per-GB charge",
		Fix:    fix}
}

func ec2Warn(err error, action string) Result {
	if isAccessDenied(err) {
		return Result{Status: Warn, Detail: "not allowed to look at the route tables: " + oneLine(err),
			Fix: "allow ec2:DescribeRouteTables and ec2:DescribeVpcEndpoints to this host's role, or check the S3 gateway endpoint in the VPC console"}
	}
	return Result{Status: Warn, Detail: "could not read the route tables: " + oneLine(err), Fix: awsapi.Fix(err, action)}
}
