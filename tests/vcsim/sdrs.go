package main

// Storage DRS additions to the launcher:
//
//   - ConfigureStorageDrsForPod_Task: the simulator of govmomi 0.24 stores only
//     podConfigSpec.enabled and defaultVmBehavior, in a task whose entity is the
//     StorageResourceManager (pyVmomi refuses to read it: not a ManagedEntity). The layer in front
//     (wrap) serves it instead, in a task on the pod, storing in the pod's
//     podStorageDrsEntry.storageDrsConfig podConfigSpec.enabled, ioLoadBalanceEnabled,
//     defaultVmBehavior, defaultIntraVmAffinity and rule (add, edit, remove: a rule without a key
//     gets one), and vmConfigSpec (add, edit, remove by VM).

import (
	"fmt"
	"net/http"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// configureStorageDrs serves ConfigureStorageDrsForPod_Task: the spec's pod settings, rules and VM
// settings go into the pod's storageDrsConfig, in a task on the pod (the simulator's own task is on
// the StorageResourceManager, which pyVmomi cannot read as a task's entity).
func configureStorageDrs(w http.ResponseWriter, body interface{}) bool {
	req, ok := body.(*types.ConfigureStorageDrsForPod_Task)
	if !ok {
		return false
	}
	pod, ok := simulator.Map.Get(req.Pod).(*simulator.StoragePod)
	if !ok {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, soapFault, "managed object not found: "+req.Pod.Value, req.Pod.Type, req.Pod.Value)
		return true
	}
	task := simulator.CreateTask(pod, "configureStorageDrsForPod", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		simulator.Map.WithLock(pod, func() {
			if pod.PodStorageDrsEntry == nil {
				pod.PodStorageDrsEntry = new(types.PodStorageDrsEntry)
			}
			cfg := &pod.PodStorageDrsEntry.StorageDrsConfig
			if s := req.Spec.PodConfigSpec; s != nil {
				if s.Enabled != nil {
					cfg.PodConfig.Enabled = *s.Enabled
				}
				if s.IoLoadBalanceEnabled != nil {
					cfg.PodConfig.IoLoadBalanceEnabled = *s.IoLoadBalanceEnabled
				}
				if s.DefaultVmBehavior != "" {
					cfg.PodConfig.DefaultVmBehavior = s.DefaultVmBehavior
				}
				if s.DefaultIntraVmAffinity != nil {
					v := *s.DefaultIntraVmAffinity
					cfg.PodConfig.DefaultIntraVmAffinity = &v
				}
				for _, r := range s.Rule {
					cfg.PodConfig.Rule = updateRules(cfg.PodConfig.Rule, r)
				}
			}
			for _, v := range req.Spec.VmConfigSpec {
				cfg.VmConfig = updateVMConfig(cfg.VmConfig, v)
			}
		})
		return nil, nil
	})
	ref := task.Run()
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, soapResponse, "ConfigureStorageDrsForPod_Task", ref.Value, "ConfigureStorageDrsForPod_Task")
	return true
}

func updateRules(rules []types.BaseClusterRuleInfo, spec types.ClusterRuleSpec) []types.BaseClusterRuleInfo {
	switch spec.Operation {
	case types.ArrayUpdateOperationRemove:
		key, _ := spec.RemoveKey.(int32)
		var out []types.BaseClusterRuleInfo
		for _, r := range rules {
			if r.GetClusterRuleInfo().Key != key {
				out = append(out, r)
			}
		}
		return out
	case types.ArrayUpdateOperationEdit:
		if spec.Info == nil {
			return rules
		}
		for i, r := range rules {
			if r.GetClusterRuleInfo().Key == spec.Info.GetClusterRuleInfo().Key {
				rules[i] = spec.Info
			}
		}
		return rules
	default: // add
		if spec.Info == nil {
			return rules
		}
		info := spec.Info.GetClusterRuleInfo()
		if info.Key == 0 {
			next := int32(1)
			for _, r := range rules {
				if k := r.GetClusterRuleInfo().Key; k >= next {
					next = k + 1
				}
			}
			info.Key = next
		}
		return append(rules, spec.Info)
	}
}

func updateVMConfig(list []types.StorageDrsVmConfigInfo, spec types.StorageDrsVmConfigSpec) []types.StorageDrsVmConfigInfo {
	if spec.Operation == types.ArrayUpdateOperationRemove {
		ref, _ := spec.RemoveKey.(types.ManagedObjectReference)
		var out []types.StorageDrsVmConfigInfo
		for _, c := range list {
			if c.Vm == nil || *c.Vm != ref {
				out = append(out, c)
			}
		}
		return out
	}
	if spec.Info == nil || spec.Info.Vm == nil {
		return list
	}
	for i, c := range list {
		if c.Vm != nil && *c.Vm == *spec.Info.Vm {
			list[i] = *spec.Info
			return list
		}
	}
	return append(list, *spec.Info)
}
