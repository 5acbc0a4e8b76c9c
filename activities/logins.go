package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"rotator/catalog"
)

// login is a username and password as a Secret holds them, for the kinds
// whose backing system is logged in to. It never leaves an activity.
type login struct{ username, password string }

// errNoSecret is a Secret that does not exist: bad input, and for a step
// that removes what a version made possible, nothing left to remove by.
var errNoSecret = errors.New("the Secret does not exist")

// secretLogin reads a login from a Secret outside the target, an admin's,
// which the catalog names.
func secretLogin(ctx context.Context, kube kubernetes.Interface, ns, name, userKey, passKey string) (login, error) {
	s, err := readSecret(ctx, kube, ns, name)
	if err != nil {
		return login{}, err
	}
	return loginOf(s, userKey, passKey)
}

// versionLogin reads the login of a version of the target, refusing a
// Secret that is not one (see checkLabels): its password is only ever
// sent to the target's server, as the target's user.
func versionLogin(ctx context.Context, kube kubernetes.Interface, t catalog.Target, name, userKey, passKey string) (login, error) {
	s, err := readSecret(ctx, kube, t.Namespace, name)
	if err != nil {
		return login{}, err
	}
	if err := checkLabels(t, s); err != nil {
		return login{}, err
	}
	return loginOf(s, userKey, passKey)
}

func readSecret(ctx context.Context, kube kubernetes.Interface, ns, name string) (*corev1.Secret, error) {
	s, err := kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("Secret %s/%s does not exist", ns, name), ErrBadInput, errNoSecret)
	}
	if err != nil {
		return nil, classify(fmt.Errorf("read Secret %s/%s: %w", ns, name, err))
	}
	return s, nil
}

func loginOf(s *corev1.Secret, userKey, passKey string) (login, error) {
	l := login{username: string(s.Data[userKey]), password: string(s.Data[passKey])}
	if l.username == "" || l.password == "" {
		return login{}, badInput("Secret %s/%s needs the keys %q and %q", s.Namespace, s.Name, userKey, passKey)
	}
	return l, nil
}

// currentVersions lists the target's versions labelled current, which the
// consumers use: a step that takes a login away checks it is not theirs.
func currentVersions(ctx context.Context, kube kubernetes.Interface, t catalog.Target) ([]corev1.Secret, error) {
	list, err := kube.CoreV1().Secrets(t.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: LabelTarget + "=" + t.Name + "," + LabelStage + "=" + StageCurrent})
	if err != nil {
		return nil, classify(fmt.Errorf("list the current version of %s: %w", t.Name, err))
	}
	return list.Items, nil
}
