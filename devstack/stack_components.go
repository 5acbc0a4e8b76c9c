package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

func (s *stack) temporal() *component {
	ready := s.path("temporal.ready")
	return &component{
		name: "temporal",
		bin:  s.self,
		args: []string{
			"temporal",
			"--db", s.path("temporal.db"),
			"--ip", "127.0.0.1",
			"--frontend-port", strconv.Itoa(temporalFrontendPort),
			"--http-port", strconv.Itoa(temporalHTTPPort),
			"--ui-port", strconv.Itoa(temporalUIPort),
			"--metrics-port", strconv.Itoa(temporalMetricsPort),
			"--namespace", "default",
			"--ready-file", ready,
		},
		addr: fmt.Sprintf("127.0.0.1:%d (UI http://127.0.0.1:%d)", temporalFrontendPort, temporalUIPort),
		ports: []int{
			temporalFrontendPort, temporalFrontendPort + 1, temporalFrontendPort + 2, temporalFrontendPort + 3,
			temporalHTTPPort, temporalUIPort, temporalMetricsPort,
		},
		markers: s.markers("temporal"),
		beforeStart: func() error {
			if err := os.Remove(ready); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil
		},
		ready: func(ctx context.Context) error {
			if _, err := os.Stat(ready); err != nil {
				return errors.New("ready file not written yet")
			}
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(temporalFrontendPort)))
			if err != nil {
				return err
			}
			return conn.Close()
		},
		readyTimeout: 3 * time.Minute,
		stopTimeout:  20 * time.Second,
	}
}

func (s *stack) etcd() *component {
	client := fmt.Sprintf("http://127.0.0.1:%d", etcdClientPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", etcdPeerPort)
	return &component{
		name: "etcd",
		bin:  s.bin("etcd"),
		args: []string{
			"--name=devstack",
			"--data-dir=" + s.path(etcdDataDir),
			"--listen-client-urls=" + client,
			"--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer,
			"--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=devstack=" + peer,
			"--logger=zap",
			"--log-outputs=stderr",
			"--auto-compaction-mode=periodic",
			"--auto-compaction-retention=1h",
		},
		addr:    client,
		ports:   []int{etcdClientPort, etcdPeerPort},
		markers: s.markers(),
		ready: func(ctx context.Context) error {
			return httpProbe(ctx, client+"/health", false)
		},
		readyTimeout: time.Minute,
	}
}

func (s *stack) apiserver() *component {
	pki := func(name string) string { return s.path("pki", name) }
	return &component{
		name: "kube-apiserver",
		bin:  s.bin("kube-apiserver"),
		args: []string{
			"--advertise-address=127.0.0.1",
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(apiserverPort),
			"--etcd-servers=" + fmt.Sprintf("http://127.0.0.1:%d", etcdClientPort),
			"--tls-cert-file=" + pki("apiserver.crt"),
			"--tls-private-key-file=" + pki("apiserver.key"),
			"--client-ca-file=" + pki("ca.crt"),
			// Aggregation layer, as kubeadm configures it; without it the
			// controller manager and scheduler log an error every 10 s.
			"--requestheader-client-ca-file=" + pki("front-proxy-ca.crt"),
			"--requestheader-allowed-names=front-proxy-client",
			"--requestheader-username-headers=X-Remote-User",
			"--requestheader-group-headers=X-Remote-Group",
			"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			"--proxy-client-cert-file=" + pki("front-proxy-client.crt"),
			"--proxy-client-key-file=" + pki("front-proxy-client.key"),
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + pki("sa.pub"),
			"--service-account-signing-key-file=" + pki("sa.key"),
			"--service-cluster-ip-range=" + serviceCIDR,
			"--authorization-mode=Node,RBAC",
			"--allow-privileged=true",
			// The endpoint of the kubernetes Service would be 127.0.0.1,
			// which Endpoints validation rejects; nothing in devstack uses it.
			"--endpoint-reconciler-type=none",
			"--profiling=false",
		},
		addr:    fmt.Sprintf("https://127.0.0.1:%d", apiserverPort),
		ports:   []int{apiserverPort},
		markers: s.markers(),
		ready: func(ctx context.Context) error {
			api, err := s.kubeAPI()
			if err != nil {
				return err
			}
			return api.readyz(ctx)
		},
		readyTimeout: 2 * time.Minute,
	}
}

func (s *stack) controllerManager() *component {
	kc := s.path("kube", "controller-manager.kubeconfig")
	return &component{
		name: "kube-controller-manager",
		bin:  s.bin("kube-controller-manager"),
		args: []string{
			"--kubeconfig=" + kc,
			"--authentication-kubeconfig=" + kc,
			"--authorization-kubeconfig=" + kc,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(controllerPort),
			"--leader-elect=false",
			"--use-service-account-credentials=true",
			"--service-account-private-key-file=" + s.path("pki", "sa.key"),
			"--root-ca-file=" + s.path("pki", "ca.crt"),
			"--cluster-signing-cert-file=" + s.path("pki", "ca.crt"),
			"--cluster-signing-key-file=" + s.path("pki", "ca.key"),
			"--service-cluster-ip-range=" + serviceCIDR,
			"--cluster-name=devstack",
			"--profiling=false",
			// The default client limit (20 requests/s per controller) held
			// the deployment and replicaset controllers to about 2.6
			// rollouts/s; make bench's scale runs start hundreds at once.
			"--kube-api-qps=200",
			"--kube-api-burst=400",
			"--concurrent-deployment-syncs=20",
			"--concurrent-replicaset-syncs=20",
		},
		addr:    fmt.Sprintf("https://127.0.0.1:%d", controllerPort),
		ports:   []int{controllerPort},
		markers: s.markers(),
		ready: func(ctx context.Context) error {
			return httpProbe(ctx, fmt.Sprintf("https://127.0.0.1:%d/healthz", controllerPort), true)
		},
		readyTimeout: time.Minute,
	}
}

func (s *stack) scheduler() *component {
	kc := s.path("kube", "scheduler.kubeconfig")
	return &component{
		name: "kube-scheduler",
		bin:  s.bin("kube-scheduler"),
		args: []string{
			"--kubeconfig=" + kc,
			"--authentication-kubeconfig=" + kc,
			"--authorization-kubeconfig=" + kc,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(schedulerPort),
			"--leader-elect=false",
			"--profiling=false",
			// As for the controller manager: binding hundreds of pods at
			// once at the default 50 requests/s.
			"--kube-api-qps=200",
			"--kube-api-burst=400",
		},
		addr:    fmt.Sprintf("https://127.0.0.1:%d", schedulerPort),
		ports:   []int{schedulerPort},
		markers: s.markers(),
		ready: func(ctx context.Context) error {
			return httpProbe(ctx, fmt.Sprintf("https://127.0.0.1:%d/healthz", schedulerPort), true)
		},
		readyTimeout: time.Minute,
	}
}

func (s *stack) kwok() *component {
	return &component{
		name: "kwok",
		bin:  s.bin("kwok"),
		args: []string{
			"--kubeconfig=" + s.kubeconfig(),
			"--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
			"--config=" + s.path("kwok", "stages.yaml"),
			"--server-address=" + fmt.Sprintf("127.0.0.1:%d", kwokPort),
		},
		addr:    fmt.Sprintf("http://127.0.0.1:%d", kwokPort),
		ports:   []int{kwokPort},
		markers: s.markers(),
		// The fake nodes exist before kwok starts, so it picks them up at once;
		// applying on every up also recreates a node deleted by hand.
		prepare: func(ctx context.Context) error {
			res, err := s.kubectl().applyManifest(ctx, "nodes.yaml")
			if err != nil {
				return err
			}
			printIndented(s.out, res)
			return nil
		},
		ready: func(ctx context.Context) error {
			if err := httpProbe(ctx, fmt.Sprintf("http://127.0.0.1:%d/healthz", kwokPort), false); err != nil {
				return err
			}
			api, err := s.kubeAPI()
			if err != nil {
				return err
			}
			return api.nodesReady(ctx, kwokNodeSelector)
		},
		readyTimeout: 90 * time.Second,
	}
}
