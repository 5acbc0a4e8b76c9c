package temporal

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// errNotYet marks a readiness check that should simply be retried.
var errNotYet = errors.New("not ready yet")

// bootstrap waits until clients can really use the server: the namespace is
// served, every search attribute exists with its type, a visibility query
// naming them all succeeds, and the UI (if any) answers. Search attributes
// missing from an existing database are added on the way; added is when,
// zero if none were missing.
func bootstrap(ctx context.Context, o Options, sas map[string]enumspb.IndexedValueType) (added time.Time, err error) {
	ctx, cancel := context.WithTimeout(ctx, startupTimeout)
	defer cancel()

	creds, err := o.ownCredentials()
	if err != nil {
		return time.Time{}, err
	}
	conn, err := grpc.NewClient(o.frontendAddr(), grpc.WithTransportCredentials(creds))
	if err != nil {
		return time.Time{}, fmt.Errorf("temporal: dialing frontend: %w", err)
	}
	defer func() { _ = conn.Close() }()
	b := &bootstrapper{
		o:   o,
		sas: sas,
		ops: operatorservice.NewOperatorServiceClient(conn),
		wf:  workflowservice.NewWorkflowServiceClient(conn),
	}

	var last error
	for {
		last = b.check(ctx)
		if last == nil {
			return b.added, nil
		}
		if !errors.Is(last, errNotYet) {
			return time.Time{}, last
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("temporal: server not ready after %v: %w", startupTimeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ownCredentials are those of the server's own clients: none on plain
// gRPC, the system worker's certificate over TLS.
func (o Options) ownCredentials() (credentials.TransportCredentials, error) {
	if o.TLS == nil {
		return insecure.NewCredentials(), nil
	}
	cert, err := tls.LoadX509KeyPair(o.TLS.SystemWorkerCertFile, o.TLS.SystemWorkerKeyFile)
	if err != nil {
		return nil, fmt.Errorf("temporal: system worker certificate: %w", err)
	}
	ca, err := os.ReadFile(o.TLS.ServerCAFile)
	if err != nil {
		return nil, fmt.Errorf("temporal: server CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("temporal: server CA %s holds no PEM certificate", o.TLS.ServerCAFile)
	}
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   o.TLS.ServerName,
		MinVersion:   tls.VersionTLS12,
	}), nil
}

type bootstrapper struct {
	o   Options
	sas map[string]enumspb.IndexedValueType
	ops operatorservice.OperatorServiceClient
	wf  workflowservice.WorkflowServiceClient
	// added is when missing search attributes were added.
	added time.Time
}

// check returns nil when ready, an error wrapping errNotYet when worth
// another try, and any other error when retrying cannot help.
func (b *bootstrapper) check(ctx context.Context) error {
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()

	resp, err := b.ops.ListSearchAttributes(callCtx, &operatorservice.ListSearchAttributesRequest{Namespace: b.o.Namespace})
	if err != nil {
		return fmt.Errorf("%w: listing search attributes: %v", errNotYet, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, want := range b.sas {
		got, ok := resp.GetCustomAttributes()[name]
		if !ok {
			missing[name] = want
		} else if got != want {
			// Changing the type would orphan the values already indexed.
			return fmt.Errorf("temporal: search attribute %q exists as %v, want %v", name, got, want)
		}
	}
	if len(missing) > 0 {
		_, err := b.ops.AddSearchAttributes(callCtx, &operatorservice.AddSearchAttributesRequest{
			Namespace:        b.o.Namespace,
			SearchAttributes: missing,
		})
		if status.Code(err) == codes.InvalidArgument {
			// For instance, more attributes of one type than SQLite has columns.
			return fmt.Errorf("temporal: adding search attributes: %w", err)
		} else if err != nil {
			return fmt.Errorf("%w: adding search attributes: %v", errNotYet, err)
		}
		b.added = time.Now()
		return fmt.Errorf("%w: search attributes just added", errNotYet)
	}

	// Listing proves the attributes are stored; a query proves the frontend's
	// namespace cache knows the namespace and maps every attribute, which is
	// what a worker or test will do first.
	if _, err := b.wf.CountWorkflowExecutions(callCtx, &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: b.o.Namespace,
		Query:     probeQuery(b.sas),
	}); err != nil {
		return fmt.Errorf("%w: visibility query: %v", errNotYet, err)
	}

	if b.o.UIPort != 0 {
		if err := checkUI(callCtx, b.o); err != nil {
			return fmt.Errorf("%w: UI: %v", errNotYet, err)
		}
	}
	return nil
}

// probeQuery names every search attribute (in a stable order, for readable
// errors) with a condition that fits any type.
func probeQuery(sas map[string]enumspb.IndexedValueType) string {
	names := make([]string, 0, len(sas))
	for name := range sas {
		names = append(names, name)
	}
	slices.Sort(names)
	conds := make([]string, len(names))
	for i, name := range names {
		conds[i] = "`" + name + "` IS NULL"
	}
	return strings.Join(conds, " OR ")
}

func checkUI(ctx context.Context, o Options) error {
	url := "http://" + net.JoinHostPort(o.IP, strconv.Itoa(o.UIPort)) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz: %s", resp.Status)
	}
	return nil
}
