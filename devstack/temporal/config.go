package temporal

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/metrics"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"google.golang.org/protobuf/types/known/durationpb"
)

// storeName names the one SQLite data store that serves as both the default
// and the visibility store, as in the Temporal CLI's dev server.
const storeName = "sqlite-default"

// prepareDatabase creates the schema in a new file and the namespace (with
// its search attributes) if missing. The namespace is written straight into
// the database before the server starts because one registered through the
// API stays unknown to the services until their namespace cache refreshes.
func prepareDatabase(o Options, sas map[string]enumspb.IndexedValueType) (*config.SQL, error) {
	cfg := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: o.DBFile,
		// Write-ahead logging with synchronous=normal: a commit is a WAL
		// append instead of a rewritten journal and two fsyncs, which was
		// most of the server's CPU under load. A killed server still
		// keeps every committed write (only a power loss may drop the
		// last ones), and readers no longer wait for the writer.
		ConnectAttributes: map[string]string{"mode": "rwc", "journal_mode": "wal", "synchronous": "normal", "busy_timeout": "10000"},
		MaxConns:          4,
		MaxIdleConns:      4,
	}

	if _, err := os.Stat(o.DBFile); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(o.DBFile), 0o755); err != nil {
			return nil, fmt.Errorf("temporal: creating database directory: %w", err)
		}
		// The schema goes into a scratch file that is renamed into place: a
		// run killed halfway would otherwise leave a file that exists (so is
		// never set up again) yet lacks tables. The name is unique because the
		// sqlite plugin keeps every connection it opened for the life of the
		// process, keyed by file name.
		scratch := fmt.Sprintf("%s.init-%d-%d", o.DBFile, os.Getpid(), time.Now().UnixNano())
		scratchCfg := *cfg
		scratchCfg.DatabaseName = scratch
		scratchCfg.ConnectAttributes = map[string]string{"mode": "rwc"}
		if err := sqliteschema.SetupSchema(&scratchCfg); err != nil {
			_ = os.Remove(scratch)
			return nil, fmt.Errorf("temporal: creating database schema: %w", err)
		}
		if err := os.Rename(scratch, o.DBFile); err != nil {
			_ = os.Remove(scratch)
			return nil, fmt.Errorf("temporal: moving new database into place: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("temporal: database file: %w", err)
	}

	ns, err := sqliteschema.NewNamespaceConfig(clusterName, o.Namespace, false, sas)
	if err != nil {
		return nil, fmt.Errorf("temporal: namespace config: %w", err)
	}
	ns.Detail.Config.Retention = durationpb.New(namespaceRetention)
	// A no-op when the namespace exists; search attributes added to Options
	// later are reconciled through the API once the server is up.
	if err := sqliteschema.CreateNamespaces(cfg, ns); err != nil {
		return nil, fmt.Errorf("temporal: creating namespace: %w", err)
	}
	return cfg, nil
}

// ports of the internal services, fixed relative to the frontend so that a
// restart binds the same ones and devstack can tell users which to keep free.
func (o Options) servicePorts() map[primitives.ServiceName]int {
	return map[primitives.ServiceName]int{
		primitives.FrontendService: o.FrontendPort,
		primitives.HistoryService:  o.FrontendPort + 1,
		primitives.MatchingService: o.FrontendPort + 2,
		primitives.WorkerService:   o.FrontendPort + 3,
	}
}

func serverConfig(o Options, sqlCfg *config.SQL) *config.Config {
	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = o.IP
	if o.MetricsPort != 0 {
		conf.Global.Metrics = &metrics.Config{
			Prometheus: &metrics.PrometheusConfig{
				ListenAddress: net.JoinHostPort(o.IP, strconv.Itoa(o.MetricsPort)),
				HandlerPath:   "/metrics",
			},
		}
	}

	conf.Persistence.DefaultStore = storeName
	conf.Persistence.VisibilityStore = storeName
	// One shard is plenty for a dev server and keeps SQLite contention low;
	// it is stored on first start and cannot change afterwards.
	conf.Persistence.NumHistoryShards = 1
	conf.Persistence.DataStores = map[string]config.DataStore{storeName: {SQL: sqlCfg}}

	httpAddr := ""
	if o.HTTPPort != 0 {
		httpAddr = net.JoinHostPort(o.IP, strconv.Itoa(o.HTTPPort))
	}
	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			// ClusterID is left empty: the server generates one on the first
			// start and keeps the stored one after that.
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             o.frontendAddr(),
				HTTPAddress:            httpAddr,
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"

	conf.Services = map[string]config.Service{}
	for svc, port := range o.servicePorts() {
		var s config.Service
		s.RPC.GRPCPort = port
		s.RPC.BindOnIP = o.IP
		if svc == primitives.FrontendService {
			s.RPC.HTTPPort = o.HTTPPort
		}
		conf.Services[string(svc)] = s
	}

	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = o.frontendAddr()
	if t := o.TLS; t != nil {
		conf.Global.TLS.Frontend.Server = config.ServerTLS{
			CertFile:          t.CertFile,
			KeyFile:           t.KeyFile,
			RequireClientAuth: t.ClientCAFile != "",
		}
		if t.ClientCAFile != "" {
			conf.Global.TLS.Frontend.Server.ClientCAFiles = []string{t.ClientCAFile}
		}
		// The server's own clients of the frontend: its system worker
		// (Schedules, batch jobs) and the internal ones that borrow its
		// settings.
		own := config.ClientTLS{ServerName: t.ServerName, RootCAFiles: []string{t.ServerCAFile}}
		conf.Global.TLS.Frontend.Client = own
		conf.Global.TLS.SystemWorker = config.WorkerTLS{
			CertFile: t.SystemWorkerCertFile,
			KeyFile:  t.SystemWorkerKeyFile,
			Client:   own,
		}
	}
	return &conf
}

// dynamicConfig holds the settings that differ from the server's defaults.
// The second result ends the forced search attribute refresh (see Run).
func dynamicConfig() (*dynamicconfig.MemoryClient, func()) {
	dc := dynamicconfig.NewMemoryClient()
	for key, value := range map[dynamicconfig.Key]any{
		// The worker drives rotations through workflow Updates, including
		// ones that return once accepted; both are on by default in v1.32,
		// set here so an upgrade that changes defaults cannot break us.
		dynamicconfig.FrontendEnableUpdateWorkflowExecution.Key():              true,
		dynamicconfig.FrontendEnableUpdateWorkflowExecutionAsyncAccepted.Key(): true,
		// The UI polls visibility APIs; the default of 10 per second throttles
		// a single open browser tab (the CLI dev server raises it likewise).
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		// Same value as the CLI dev server: keeps memory modest on one host.
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key(): 8096,
		// Like the CLI dev server: an activity scheduled by a workflow task
		// goes back to the worker with that task's completion instead of
		// through matching, a round trip less per step (make bench).
		dynamicconfig.EnableActivityEagerExecution.Key(): true,
		// One partition per task queue, as a single host has no use for
		// more: with the default four, a poll and a task may meet on
		// different partitions and be forwarded to the root (make bench).
		dynamicconfig.MatchingNumTaskqueueReadPartitions.Key():  1,
		dynamicconfig.MatchingNumTaskqueueWritePartitions.Key(): 1,
	} {
		dc.OverrideValue(key, value)
	}
	// Search attributes added at start-up reach each service's cache only
	// when that cache next refreshes, once a minute; until then every read
	// refreshes it. That read is a database query under a lock shared by
	// every start, upsert and visibility write (5 % of the server's CPU at
	// N=1000 in make bench), so it lasts no longer than needed.
	return dc, dc.OverrideValue(dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(), true)
}

// saCacheRefresh is how often the server's search attribute caches reload
// on their own (cacheRefreshInterval in go.temporal.io/server/common/searchattribute),
// with a margin.
const saCacheRefresh = 65 * time.Second

func serverOptions(o Options, sqlCfg *config.SQL, logger log.Logger, dc dynamicconfig.Client) ([]temporal.ServerOption, error) {
	conf := serverConfig(o, sqlCfg)
	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("temporal: authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("temporal: claim mapper: %w", err)
	}
	if o.TLS != nil || o.APIKeysFile != "" {
		// Secured: only the callers the claim mapper knows get rights.
		m := &apiKeyClaimMapper{log: o.Logger}
		if m.log == nil {
			m.log = slog.New(slog.DiscardHandler)
		}
		if o.APIKeysFile != "" {
			if m.keys, err = loadAPIKeys(o.APIKeysFile); err != nil {
				return nil, err
			}
		}
		claimMapper, authorizer = m, authorization.NewDefaultAuthorizer()
	}
	// Static membership: every service is in this process, so ringpop's
	// gossip (and its extra membership ports) has nothing to discover.
	hosts := map[primitives.ServiceName]static.Hosts{}
	for svc, port := range o.servicePorts() {
		hosts[svc] = static.SingleLocalHost(net.JoinHostPort(o.IP, strconv.Itoa(port)))
	}
	return []temporal.ServerOption{
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dc),
	}, nil
}

func newUIServer(o Options) *uiserver.Server {
	return uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		Host:                o.IP,
		Port:                o.UIPort,
		TemporalGRPCAddress: o.frontendAddr(),
		EnableUI:            true,
		DefaultNamespace:    o.Namespace,
		// The UI is served over plain HTTP on loopback; a Secure CSRF cookie
		// would never be sent back and every write action would fail.
		CORS: uiconfig.CORS{CookieInsecure: true},
		// No codec server: payloads are plain JSON in this project.
		Codec: uiconfig.Codec{Endpoint: ""},
		TLS:   uiTLS(o.TLS),
		// Spelled out because these are the point of a dev UI: starting
		// workflows by hand and cancelling, signalling, updating or resetting
		// them. All are enabled by their zero values.
		DisableWriteActions:       false,
		StartWorkflowDisabled:     false,
		WorkflowCancelDisabled:    false,
		WorkflowSignalDisabled:    false,
		WorkflowUpdateDisabled:    false,
		WorkflowResetDisabled:     false,
		WorkflowTerminateDisabled: false,
		BatchActionsDisabled:      false,
		// Without these the UI prints a request log line per call and tries
		// to fetch news from the internet, which this machine cannot reach.
		HideLogs:         true,
		DisableNewsFetch: true,
	}))
}

// uiTLS has the UI reach a TLS frontend as the system worker does.
func uiTLS(t *TLS) uiconfig.TLS {
	if t == nil {
		return uiconfig.TLS{}
	}
	return uiconfig.TLS{
		CaFile:     t.ServerCAFile,
		CertFile:   t.SystemWorkerCertFile,
		KeyFile:    t.SystemWorkerKeyFile,
		ServerName: t.ServerName,
		// The UI's default skips verifying the frontend's certificate.
		EnableHostVerification: true,
	}
}
