-- `modelops rollout abort`: roll the canary back now (canary to 0%, stable to 100%).
-- Writes status.abort: true, as the CLI does; the operator consumes it.
-- Argo CD sends the change as a merge patch of the status subresource.
if type(obj.status) ~= "table" or obj.status.canaryVersion == nil then
  error("no canary in progress: nothing to abort", 0)
end
obj.status.abort = true
return obj
