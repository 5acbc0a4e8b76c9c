package main

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// benchNodeLabel marks, labels and taints a scale run's own fake node.
const benchNodeLabel = "rotator.dev/bench"

// benchNode creates a kwok node for a scale run's pods and waits until it
// is ready; kwok manages every node with its annotation.
func (e *env) benchNode(ctx context.Context, run string, pods int) (string, error) {
	name := run + "-node"
	capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1000"), corev1.ResourceMemory: resource.MustParse("4Ti"),
		corev1.ResourcePods: *resource.NewQuantity(int64(pods), resource.DecimalSI)}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels:      map[string]string{benchNodeLabel: run, "type": "kwok-bench", "kubernetes.io/hostname": name}},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: benchNodeLabel, Value: run, Effect: corev1.TaintEffectNoSchedule},
			{Key: "kwok.x-k8s.io/node", Value: "fake", Effect: corev1.TaintEffectNoSchedule}}},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	if _, err := e.kube.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create bench node: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := e.kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return name, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				return name, nil
			}
		}
		if time.Now().After(deadline) {
			return name, fmt.Errorf("bench node %s not ready after a minute: is kwok running?", name)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitRolledOut waits until n Deployments in the namespace have rolled
// out their latest template, by the rules of `kubectl rollout status`.
func (e *env) waitRolledOut(ctx context.Context, ns string, n int) error {
	deadline := time.Now().Add(15 * time.Minute)
	for {
		list, err := e.kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return err
		}
		done := 0
		for i := range list.Items {
			if rolledOut(&list.Items[i]) {
				done++
			}
		}
		if done >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d Deployments rolled out after 15 min", done, n)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// rolledOut says whether a Deployment has rolled out its latest template,
// by the rules of `kubectl rollout status`: every replica updated and
// available, none of an older template left.
func rolledOut(d *appsv1.Deployment) bool {
	s, want := d.Status, int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.Replicas == want && s.AvailableReplicas == want
}

// waitAvailable waits until n Deployments in the namespace are available.
func (e *env) waitAvailable(ctx context.Context, ns string, n int) error {
	deadline := time.Now().Add(15 * time.Minute)
	for {
		list, err := e.kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return err
		}
		ready := 0
		for _, d := range list.Items {
			if d.Status.AvailableReplicas == 1 && d.Status.ObservedGeneration == d.Generation {
				ready++
			}
		}
		if ready >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d Deployments available after 15 min", ready, n)
		}
		time.Sleep(time.Second)
	}
}

// parallel runs f(0..n-1) with at most width at once.
func parallel(n, width int, f func(i int) error) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, width)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				first = cmp.Or(first, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}
