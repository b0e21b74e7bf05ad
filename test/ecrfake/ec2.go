package ecrfake

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
)

// ec2Version is the EC2 API version of the query protocol.
const ec2Version = "2016-11-15"

// Network is the VPC the fake's EC2 API describes: one subnet whose route
// table may route S3's prefix list to a gateway endpoint.
type Network struct {
	VPC        string
	Subnet     string
	RouteTable string
	// S3Gateway makes the VPC have a gateway endpoint for S3 with a route
	// in RouteTable.
	S3Gateway bool
	// Explicit associates RouteTable with Subnet; without it the table is
	// the VPC's main route table, which subnets use implicitly.
	Explicit bool
}

// DefaultNetwork is the network of a new fake: an explicitly associated
// route table with an S3 gateway endpoint, as a well set-up VPC has.
var DefaultNetwork = Network{VPC: "vpc-0ecrfake0000000a", Subnet: "subnet-0ecrfake000000a", RouteTable: "rtb-0ecrfake00000000a", S3Gateway: true, Explicit: true}

type ec2State struct {
	mu  sync.Mutex
	set bool
	net Network
}

// SetNetwork replaces the VPC the EC2 API describes.
func (s *Server) SetNetwork(n Network) {
	s.ec2.mu.Lock()
	defer s.ec2.mu.Unlock()
	s.ec2.net, s.ec2.set = n, true
}

// Network returns the VPC the EC2 API describes.
func (s *Server) Network() Network {
	s.ec2.mu.Lock()
	defer s.ec2.mu.Unlock()
	if !s.ec2.set {
		return DefaultNetwork
	}
	return s.ec2.net
}

// isEC2Request reports whether a query-protocol body is for the EC2 API.
func isEC2Request(body []byte) bool {
	form, err := url.ParseQuery(string(body))
	return err == nil && form.Get("Version") == ec2Version
}

// ec2Filters reads Filter.N.Name / Filter.N.Value.M.
func ec2Filters(form url.Values) map[string][]string {
	out := map[string][]string{}
	for i := 1; ; i++ {
		name := form.Get("Filter." + strconv.Itoa(i) + ".Name")
		if name == "" {
			return out
		}
		for j := 1; ; j++ {
			v, ok := form["Filter."+strconv.Itoa(i)+".Value."+strconv.Itoa(j)]
			if !ok {
				break
			}
			out[name] = append(out[name], v...)
		}
	}
}

// ec2FilterNames are the filters the fake knows; EC2 refuses others.
var ec2FilterNames = []string{"vpc-id", "route-table-id", "association.subnet-id", "association.main",
	"service-name", "vpc-endpoint-type", "vpc-endpoint-id"}

// matches reports whether every filter given holds a value in have; the
// second result names a filter the fake does not know.
func matches(filters map[string][]string, have map[string]string) (bool, string) {
	for k, vs := range filters {
		if !slices.Contains(ec2FilterNames, k) {
			return false, k
		}
		v, ok := have[k]
		if !ok || !slices.Contains(vs, v) {
			return false, ""
		}
	}
	return true, ""
}

type ec2Item struct {
	Value string `xml:",chardata"`
}

type ec2Route struct {
	DestinationCidrBlock    string `xml:"destinationCidrBlock,omitempty"`
	DestinationPrefixListID string `xml:"destinationPrefixListId,omitempty"`
	GatewayID               string `xml:"gatewayId,omitempty"`
	State                   string `xml:"state"`
	Origin                  string `xml:"origin"`
}

type ec2Assoc struct {
	ID           string `xml:"routeTableAssociationId"`
	RouteTableID string `xml:"routeTableId"`
	SubnetID     string `xml:"subnetId,omitempty"`
	Main         bool   `xml:"main"`
}

type ec2RouteTable struct {
	ID           string     `xml:"routeTableId"`
	VpcID        string     `xml:"vpcId"`
	Routes       []ec2Route `xml:"routeSet>item"`
	Associations []ec2Assoc `xml:"associationSet>item"`
}

type ec2Endpoint struct {
	ID          string    `xml:"vpcEndpointId"`
	Type        string    `xml:"vpcEndpointType"`
	VpcID       string    `xml:"vpcId"`
	ServiceName string    `xml:"serviceName"`
	State       string    `xml:"state"`
	RouteTables []ec2Item `xml:"routeTableIdSet>item"`
}

// serveEC2 answers DescribeRouteTables and DescribeVpcEndpoints for
// Network (query protocol, XML); other actions are refused as unknown.
func (s *Server) serveEC2(w http.ResponseWriter, r *http.Request, body []byte) {
	ri := info(r)
	form, _ := url.ParseQuery(string(body))
	action := form.Get("Action")
	ri.operation = "ec2:" + action
	if aerr := s.verifySigV4(r, body, "ec2", s.opts.Region); aerr != nil {
		ri.auth = "sigv4-invalid"
		writeEC2Error(w, http.StatusUnauthorized, "AuthFailure", aerr.msg)
		return
	}
	ri.auth = "sigv4"
	s.mu.Lock()
	denied := s.denyOps[action]
	s.mu.Unlock()
	if action != "DescribeRouteTables" && action != "DescribeVpcEndpoints" {
		writeEC2Error(w, http.StatusBadRequest, "InvalidAction", "The action "+action+" is not valid for this web service.")
		return
	}
	if denied {
		writeEC2Error(w, http.StatusForbidden, "UnauthorizedOperation", "You are not authorized to perform this operation. User: "+s.callerARN()+" is not authorized to perform: ec2:"+action)
		return
	}
	n := s.Network()
	endpointID := "vpce-0ecrfakes300000a"
	s3Service := "com.amazonaws." + s.opts.Region + ".s3"
	filters := ec2Filters(form)
	var out any
	switch action {
	case "DescribeRouteTables":
		rt := ec2RouteTable{ID: n.RouteTable, VpcID: n.VPC, Routes: []ec2Route{
			{DestinationCidrBlock: "10.0.0.0/16", GatewayID: "local", State: "active", Origin: "CreateRouteTable"},
			{DestinationCidrBlock: "0.0.0.0/0", State: "active", Origin: "CreateRoute"},
		}}
		if n.S3Gateway {
			rt.Routes = append(rt.Routes, ec2Route{DestinationPrefixListID: "pl-63a5400a", GatewayID: endpointID, State: "active", Origin: "CreateRoute"})
		}
		have := map[string]string{"vpc-id": n.VPC, "route-table-id": n.RouteTable}
		if n.Explicit {
			rt.Associations = []ec2Assoc{{ID: "rtbassoc-0ecrfake0000a", RouteTableID: n.RouteTable, SubnetID: n.Subnet}}
			have["association.subnet-id"], have["association.main"] = n.Subnet, "false"
		} else {
			rt.Associations = []ec2Assoc{{ID: "rtbassoc-0ecrfake0000m", RouteTableID: n.RouteTable, Main: true}}
			have["association.main"] = "true"
		}
		ok, unknown := matches(filters, have)
		if unknown != "" {
			writeEC2Error(w, http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf("The filter '%s' is invalid", unknown))
			return
		}
		res := struct {
			XMLName   xml.Name        `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ DescribeRouteTablesResponse"`
			RequestID string          `xml:"requestId"`
			Tables    []ec2RouteTable `xml:"routeTableSet>item"`
		}{RequestID: requestID()}
		if ok {
			res.Tables = []ec2RouteTable{rt}
		}
		out = res
	case "DescribeVpcEndpoints":
		res := struct {
			XMLName   xml.Name      `xml:"http://ec2.amazonaws.com/doc/2016-11-15/ DescribeVpcEndpointsResponse"`
			RequestID string        `xml:"requestId"`
			Endpoints []ec2Endpoint `xml:"vpcEndpointSet>item"`
		}{RequestID: requestID()}
		if n.S3Gateway {
			have := map[string]string{"vpc-id": n.VPC, "service-name": s3Service, "vpc-endpoint-type": "Gateway", "vpc-endpoint-id": endpointID}
			ok, unknown := matches(filters, have)
			if unknown != "" {
				writeEC2Error(w, http.StatusBadRequest, "InvalidParameterValue", fmt.Sprintf("The filter '%s' is invalid", unknown))
				return
			}
			if ok {
				res.Endpoints = []ec2Endpoint{{ID: endpointID, Type: "Gateway", VpcID: n.VPC, ServiceName: s3Service, State: "available", RouteTables: []ec2Item{{n.RouteTable}}}}
			}
		}
		out = res
	}
	b, _ := xml.Marshal(out)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	_, _ = w.Write(append([]byte(xml.Header), b...))
}

// writeEC2Error answers like the EC2 API.
func writeEC2Error(w http.ResponseWriter, status int, code, msg string) {
	out := struct {
		XMLName xml.Name `xml:"Response"`
		Errors  []struct {
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		} `xml:"Errors>Error"`
		RequestID string `xml:"RequestID"`
	}{RequestID: requestID()}
	out.Errors = append(out.Errors, struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}{code, msg})
	b, _ := xml.Marshal(out)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(append([]byte(xml.Header), b...))
}
