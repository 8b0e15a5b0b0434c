// Command hostpath-provisioner is the test node's dynamic volume provisioner,
// in the manner of MicroK8s' hostpath-storage addon: for each Pending PVC of a
// StorageClass whose provisioner is -name, it makes a directory under -root
// (mode 0777) and a hostPath PersistentVolume bound to the claim; when such a
// volume is Released and its reclaim policy is Delete, it removes the
// directory and the volume. It runs on the node's host (single node), polls
// the API server every -interval and needs no helper pods.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	annProvisionedBy = "pv.kubernetes.io/provisioned-by"
	annStorageProv   = "volume.kubernetes.io/storage-provisioner"
	annBetaStorProv  = "volume.beta.kubernetes.io/storage-provisioner"
	annPath          = "codebay.test/hostpath"
)

type provisioner struct {
	cs   kubernetes.Interface
	name string
	root string
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster")
	name := flag.String("name", "microk8s.io/hostpath", "provisioner name (StorageClass .provisioner)")
	root := flag.String("root", "", "directory under which volumes are made")
	interval := flag.Duration("interval", time.Second, "how often to look for work")
	flag.Parse()
	if *kubeconfig == "" || *root == "" {
		log.Fatal("-kubeconfig and -root are required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(*root, 0o755); err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	p := &provisioner{cs: cs, name: *name, root: filepath.Clean(*root)}
	log.Printf("hostpath-provisioner %s: volumes under %s", p.name, p.root)
	t := time.NewTicker(*interval)
	defer t.Stop()
	for {
		if err := p.sync(ctx); err != nil && ctx.Err() == nil {
			log.Printf("sync: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *provisioner) sync(ctx context.Context) error {
	scs, err := p.cs.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	ours := map[string]*storagev1.StorageClass{}
	var def string
	for i := range scs.Items {
		sc := &scs.Items[i]
		if sc.Provisioner != p.name {
			continue
		}
		ours[sc.Name] = sc
		if sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
			def = sc.Name
		}
	}
	pvcs, err := p.cs.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range pvcs.Items {
		pvc := &pvcs.Items[i]
		if pvc.Status.Phase != corev1.ClaimPending || pvc.Spec.VolumeName != "" || pvc.DeletionTimestamp != nil {
			continue
		}
		scName := def
		if pvc.Spec.StorageClassName != nil {
			scName = *pvc.Spec.StorageClassName
		}
		sc := ours[scName]
		if sc == nil {
			continue
		}
		if err := p.provision(ctx, pvc, sc); err != nil {
			log.Printf("provision %s/%s: %v", pvc.Namespace, pvc.Name, err)
		}
	}
	pvs, err := p.cs.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for i := range pvs.Items {
		pv := &pvs.Items[i]
		if pv.Annotations[annProvisionedBy] != p.name || pv.Status.Phase != corev1.VolumeReleased ||
			pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
			continue
		}
		if err := p.remove(ctx, pv); err != nil {
			log.Printf("delete %s: %v", pv.Name, err)
		}
	}
	return nil
}

func (p *provisioner) provision(ctx context.Context, pvc *corev1.PersistentVolumeClaim, sc *storagev1.StorageClass) error {
	name := "pvc-" + string(pvc.UID)
	dir := filepath.Join(p.root, fmt.Sprintf("%s-%s-%s", pvc.Namespace, pvc.Name, name))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	// Writable by any user of any pod (MicroK8s' provisioner does the same).
	if err := os.Chmod(dir, 0o777); err != nil {
		return err
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if sc.ReclaimPolicy != nil {
		reclaim = *sc.ReclaimPolicy
	}
	dirType := corev1.HostPathDirectoryOrCreate
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{annProvisionedBy: p.name, annPath: dir},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: pvc.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              sc.Name,
			VolumeMode:                    pvc.Spec.VolumeMode,
			MountOptions:                  sc.MountOptions,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &dirType},
			},
		},
	}
	if len(pv.Spec.AccessModes) == 0 {
		pv.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	}
	_, err := p.cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err == nil {
		log.Printf("provisioned %s for %s/%s at %s", name, pvc.Namespace, pvc.Name, dir)
	}
	return err
}

func (p *provisioner) remove(ctx context.Context, pv *corev1.PersistentVolume) error {
	dir := pv.Annotations[annPath]
	if dir == "" && pv.Spec.HostPath != nil {
		dir = pv.Spec.HostPath.Path
	}
	dir = filepath.Clean(dir)
	if !strings.HasPrefix(dir, p.root+string(filepath.Separator)) {
		return fmt.Errorf("path %q is not under %s; not removing it", dir, p.root)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	err := p.cs.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		log.Printf("deleted %s and %s", pv.Name, dir)
	}
	return err
}
