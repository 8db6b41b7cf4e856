"""The shared TorchScript runner: a Python-based Triton backend named `atelier`.

Every model in `model_repository/` says `backend: "atelier"` and ships only
`<version>/model.pt`. Inputs are passed to the TorchScript `forward` in the order of
the config's `input` list; its outputs are named by the config's `output` list.
Requests that dynamic batching hands over together are concatenated, run once and
split. If the batch fails, each request is run alone so that an error reaches only the
request that caused it. A config's `autocast` parameter (`bfloat16`) runs the model under
`torch.autocast` where the device computes that type natively and in float32 elsewhere;
the log says which when the model loads. Imports: torch, numpy and Triton's utilities
only, so the file can be copied into the official Triton container as it is. Outside
Triton, the tests, benches and `deploy publish` import `autocast_dtype` and
`precision_name` from here.
"""

import json
import os

import numpy as np
import torch

try:
    import triton_python_backend_utils as pb_utils
except ImportError:  # imported outside Triton, for autocast_dtype and precision_name
    pb_utils = None


class TritonPythonModel:
    """Loads `<model>/<version>/model.pt` and serves it."""

    def initialize(self, args):
        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        torch.set_num_threads(self._threads(config, parameters))
        self.device = self._device(args)
        self.autocast = autocast_dtype(parameters.get("autocast", ""), self.device)
        pb_utils.Logger.log_info(f"{args['model_name']}: runs in {precision_name(self.autocast)}")
        path = os.path.join(args["model_repository"], args["model_version"], "model.pt")
        self.model = torch.jit.load(path, map_location=self.device).eval()
        self.input_names = [spec["name"] for spec in config["input"]]
        self.outputs = [
            (spec["name"], pb_utils.triton_string_to_numpy(spec["data_type"]))
            for spec in config["output"]
        ]

    @staticmethod
    def _threads(config, parameters):
        """Torch threads per instance: the `torch_threads` parameter, or cores / instances."""
        if parameters.get("torch_threads"):
            return int(parameters["torch_threads"])
        instances = sum(group.get("count", 1) for group in config.get("instance_group", [{}]))
        return max(1, (os.cpu_count() or 1) // max(1, instances))

    @staticmethod
    def _device(args):
        if args.get("model_instance_kind") == "GPU" and torch.cuda.is_available():
            return torch.device("cuda", int(args["model_instance_device_id"]))
        return torch.device("cpu")

    def execute(self, requests):
        inputs = [self._inputs(request) for request in requests]
        try:
            return self._run_batched(inputs)
        except Exception:  # one bad request must not fail the others: retry them one by one
            return [self._run_one(request_inputs) for request_inputs in inputs]

    def _inputs(self, request):
        return [
            pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.input_names
        ]

    def _run_batched(self, inputs):
        sizes = [arrays[0].shape[0] for arrays in inputs]
        joined = [np.concatenate(column) for column in zip(*inputs, strict=True)]
        outputs = self._forward(joined)
        bounds = np.cumsum(sizes)[:-1]
        parts = [np.split(output, bounds) for output in outputs]
        return [self._response([part[i] for part in parts]) for i in range(len(inputs))]

    def _run_one(self, arrays):
        try:
            return self._response(self._forward(arrays))
        except Exception as error:
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(_message(error)))

    def _forward(self, arrays):
        tensors = [torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for a in arrays]
        with torch.inference_mode(), self._autocast():
            result = self.model(*tensors)
        results = result if isinstance(result, tuple | list) else (result,)
        return [tensor.cpu().numpy() for tensor in results]

    def _autocast(self):
        enabled = self.autocast is not None
        return torch.autocast(self.device.type, dtype=self.autocast, enabled=enabled)

    def _response(self, outputs):
        tensors = [
            pb_utils.Tensor(name, np.ascontiguousarray(array, dtype=dtype))
            for (name, dtype), array in zip(self.outputs, outputs, strict=True)
        ]
        return pb_utils.InferenceResponse(output_tensors=tensors)


def autocast_dtype(name, device):
    """The dtype to autocast to: `name`'s, where `device` computes it natively, else None."""
    if name != "bfloat16":
        if name:
            raise ValueError(f"autocast must be bfloat16 or empty, not {name!r}")
        return None
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
    else:
        native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return torch.bfloat16 if native else None


def precision_name(dtype):
    """What a model autocast to `dtype` runs in, by name ("bfloat16"; None: "float32")."""
    return str(dtype or torch.float32).removeprefix("torch.")


def _message(error):
    """The useful line of a TorchScript error (its last non-empty line), else str(error)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
