package mirror

// HostURLForTest lets the external tests compare with the hosts package.
var HostURLForTest = HostURL
