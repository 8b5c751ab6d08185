-- `modelops rollout retry`: roll a rolled-back version out again from the first step (or withdraw
-- a pending abort). Writes status.abort: false and removes status.failedVersion, as the CLI does.
-- Argo CD sends the change as a merge patch of the status subresource.
if type(obj.status) ~= "table" or (obj.status.failedVersion == nil and obj.status.abort ~= true) then
  error("nothing failed: retry rolls a rolled-back version out again", 0)
end
obj.status.abort = false
obj.status.failedVersion = nil
return obj
