package main

import (
	"context"
	"os"
	"time"

	"github.com/ecr-ptc/ecr-ptc/awsapi"
)

func main() {
	os.Exit(awsapi.ServeTokenFetcher(context.Background(), nil, os.Stdin, os.Stdout, 5*time.Minute))
}
