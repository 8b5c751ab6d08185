-- Argo CD resource actions of a modelops.dev/ModelDeployment: what `modelops rollout promote`,
-- `abort` and `retry` do, enabled exactly when the CLI would accept them
-- (modelops.core.rollout_control). Base and table libraries only; never errors on a partial object.
local actions = {}

local status = obj.status
if type(status) ~= "table" then
  status = {}
end
local steps = {}
if type(obj.spec) == "table" and type(obj.spec.strategy) == "table" and type(obj.spec.strategy.canary) == "table"
    and type(obj.spec.strategy.canary.steps) == "table" then
  steps = obj.spec.strategy.canary.steps
end

local inProgress = status.canaryVersion ~= nil
local abortPending = status.abort == true
local index = tonumber(status.currentStepIndex)
local promoting = index ~= nil and index >= #steps

-- promote: advance past the current step (a pause, an analysis) once; also lifts a user pause.
local promotable = inProgress and not abortPending and index ~= nil and not promoting
    and tonumber(status.promoteStep) ~= index
actions["promote"] = {["disabled"] = not promotable}

-- abort: canary to 0%, stable back to 100%; too late once every step is done.
actions["abort"] = {["disabled"] = not (inProgress and not abortPending and not promoting)}

-- retry: roll a rolled-back version out again (or withdraw a pending abort).
actions["retry"] = {["disabled"] = not (status.failedVersion ~= nil or abortPending)}

return actions
