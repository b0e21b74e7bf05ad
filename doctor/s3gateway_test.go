package doctor

import (
	"errors"
	"strings"
	"testing"

	"github.com/ecr-ptc/ecr-ptc/test/ecrfake"
)

// TestS3Gateway runs the s3-gateway check with the real EC2 client against
// the local ECR's EC2 API.
func TestS3Gateway(t *testing.T) {
	def := ecrfake.DefaultNetwork
	noGateway := def
	noGateway.S3Gateway = false
	mainTable := def
	mainTable.Explicit = false
	mainNoGateway := mainTable
	mainNoGateway.S3Gateway = false
	tests := []struct {
		name       string
		network    ecrfake.Network
		deny       string
		subnet     string
		want       Status
		wantDetail string
		wantFix    string
	}{
		{name: "subnet table routes s3", network: def, want: Pass, wantDetail: "routes S3 to gateway endpoint vpce-"},
		{name: "no gateway endpoint", network: noGateway, want: Warn, wantDetail: "go through the NAT gateway", wantFix: "aws ec2 create-vpc-endpoint --vpc-id " + def.VPC + " --service-name com.amazonaws.us-east-1.s3 --route-table-ids " + def.RouteTable},
		{name: "main route table routes s3", network: mainTable, want: Pass, wantDetail: def.RouteTable},
		{name: "main route table without gateway", network: mainNoGateway, want: Warn, wantDetail: "no route to an S3 gateway endpoint"},
		{name: "not allowed", network: def, deny: "DescribeRouteTables", want: Warn, wantDetail: "not allowed", wantFix: "ec2:DescribeRouteTables"},
		{name: "not on ec2", network: def, subnet: "-", want: Skip, wantDetail: "subnet is unknown"},
	}
	f := newFixture(t, ecrfake.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.fake.SetNetwork(tt.network)
			if tt.deny != "" {
				f.fake.DenyOperation(tt.deny, true)
				defer f.fake.DenyOperation(tt.deny, false)
			}
			d := *f.doctor
			if tt.subnet == "-" {
				d.Subnet, d.NetworkErr = "", errors.New("instance metadata unreachable")
			}
			r := d.checkS3Gateway(t.Context(), &state{})
			if r.Status != tt.want || !strings.Contains(r.Detail, tt.wantDetail) || !strings.Contains(r.Fix, tt.wantFix) {
				t.Fatalf("got %s %q (fix %q); want %s with %q (fix %q)", r.Status, r.Detail, r.Fix, tt.want, tt.wantDetail, tt.wantFix)
			}
		})
	}
}
