-- `modelops rollout promote`: advance the canary past its current step, once.
-- Writes status.promoteStep (and lifts a user pause), as the CLI does; the operator consumes it.
-- Argo CD sends the change as a merge patch of the status subresource.
if type(obj.status) ~= "table" or obj.status.canaryVersion == nil then
  error("no canary in progress: nothing to promote", 0)
end
if obj.status.abort == true then
  error("an abort is pending: the canary is being rolled back", 0)
end
local index = tonumber(obj.status.currentStepIndex)
if index == nil then
  error("no current step yet: nothing to promote", 0)
end
obj.status.promoteStep = index
if obj.status.pausedByUser == true then
  obj.status.pausedByUser = false
end
return obj
