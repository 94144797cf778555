"""The SAM template as CloudFormation sees it: translation, parameters, conditions, intrinsics.

``translate`` runs the SAM transform the way ``sam deploy``/CloudFormation do (samtranslator, the
library behind ``AWS::Serverless-2016-10-31``), with the AWS managed policy map bundled with
samtranslator instead of an IAM ListPolicies call.

:class:`Resolver` evaluates the intrinsic functions of the translated template (``Ref``,
``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Join``, ``Fn::If``, ``Fn::Select``, ``Fn::Split``, the
condition functions and ``AWS::NoValue``) against a deployed stack, so the resources moto's
CloudFormation skipped can be made from their own template properties.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import boto3
from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template
from samtranslator.yaml_helper import yaml_parse

__all__ = ["NO_VALUE", "Resolver", "UnsupportedIntrinsic", "load_sam", "parameter_values", "translate"]


class UnsupportedIntrinsic(ValueError):
    """An intrinsic function or attribute this resolver does not evaluate."""


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Final = _NoValue()
_SUB_VARIABLE: Final = re.compile(r"\$\{([^}]+)\}")


class _BundledPolicyLoader:
    """samtranslator's ``ManagedPolicyLoader`` interface, answered from its bundled policy map."""

    def load(self) -> dict[str, str]:
        return dict(get_bundled_managed_policy_map("aws") or {})


def load_sam(path: Path) -> dict[str, Any]:
    """The SAM template at ``path`` (YAML with the short intrinsic tags)."""
    loaded = yaml_parse(path.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} is not a template")
    return loaded


def parameter_values(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    """Every parameter's value: the override, else the template default (as CloudFormation gives it)."""
    unknown = set(overrides) - set(template.get("Parameters", {}))
    if unknown:
        raise ValueError(f"unknown parameters: {', '.join(sorted(unknown))}")
    values: dict[str, str] = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in overrides:
            values[name] = str(overrides[name])
        elif "Default" in spec:
            values[name] = str(spec["Default"])
        else:
            raise ValueError(f"parameter {name} has no default and no value")
    return values


def translate(
    sam_template: dict[str, Any], parameters: Mapping[str, str], pseudo: Mapping[str, str]
) -> dict[str, Any]:
    """The CloudFormation template CloudFormation's SAM transform makes of ``sam_template``."""
    values: dict[str, Any] = {**pseudo, **parameters}
    # What samtranslator.translator.transform.transform does, with the region given explicitly
    # (transform takes it from the default boto3 session, i.e. the caller's AWS configuration).
    to_py27_compatible_template(sam_template, values)
    translator = Translator(
        None, Parser(), boto_session=boto3.session.Session(region_name=pseudo["AWS::Region"])
    )
    translated = translator.translate(
        sam_template, parameter_values=values, get_managed_policy_map=_BundledPolicyLoader().load
    )
    return dict(undo_mark_unicode_str_in_template(translated))


class Resolver:
    """Evaluates intrinsic functions of a translated template against a deployed stack."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str],
        pseudo: Mapping[str, str],
        physical_id: Callable[[str], str],
        attribute: Callable[[str, str], Any],
    ) -> None:
        self._template = template
        self._parameters = parameters
        self._pseudo = pseudo
        self._physical_id = physical_id
        self._attribute = attribute
        self._conditions: dict[str, bool] = {}

    # -- conditions -----------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            definition = self._template.get("Conditions", {}).get(name)
            if definition is None:
                raise UnsupportedIntrinsic(f"unknown condition {name}")
            self._conditions[name] = bool(self._evaluate_condition(definition))
        return self._conditions[name]

    def included(self, logical_id: str) -> bool:
        """Whether the resource is created at all (its Condition, if any, holds)."""
        name = self._template["Resources"][logical_id].get("Condition")
        return True if name is None else self.condition(name)

    def _evaluate_condition(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            (key, value), *_ = node.items()
            if key == "Fn::Equals":
                left, right = (self.resolve(v) for v in value)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self._evaluate_condition(value[0])
            if key == "Fn::And":
                return all(self._evaluate_condition(v) for v in value)
            if key == "Fn::Or":
                return any(self._evaluate_condition(v) for v in value)
            if key == "Condition":
                return self.condition(value)
        return self.resolve(node)

    # -- values ---------------------------------------------------------------------------------
    def resolve(self, node: Any) -> Any:
        """``node`` with every intrinsic function evaluated and ``AWS::NoValue`` removed."""
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), *_ = node.items()
            if key == "Ref":
                return self._ref(value)
            if key.startswith("Fn::") or key == "Condition":
                return self._function(key, value)
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._parameters:
            spec = self._template.get("Parameters", {}).get(name, {})
            value = self._parameters[name]
            if str(spec.get("Type", "")).startswith(("CommaDelimitedList", "List<")):
                return [item.strip() for item in value.split(",")] if value else []
            return value
        if name in self._template.get("Resources", {}):
            return self._physical_id(name)
        raise UnsupportedIntrinsic(f"Ref to unknown name {name}")

    def _function(self, key: str, value: Any) -> Any:
        if key == "Fn::GetAtt":
            logical, attr = value.split(".", 1) if isinstance(value, str) else value
            return self._attribute(str(logical), str(self.resolve(attr)))
        if key == "Fn::Sub":
            text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1])
            return self._sub(text, {k: self.resolve(v) for k, v in variables.items()})
        if key == "Fn::Join":
            separator, items = value
            return str(separator).join(str(item) for item in self.resolve(items))
        if key == "Fn::If":
            name, when_true, when_false = value
            return self.resolve(when_true if self.condition(name) else when_false)
        if key == "Fn::Select":
            index, items = value
            return self.resolve(items)[int(self.resolve(index))]
        if key == "Fn::Split":
            separator, text = value
            return str(self.resolve(text)).split(separator)
        if key in {"Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition"}:
            return self._evaluate_condition({key: value})
        raise UnsupportedIntrinsic(f"{key} is not evaluated by the emulator")

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attr = name.split(".", 1)
                return str(self._attribute(logical, attr))
            return str(self._ref(name))

        return _SUB_VARIABLE.sub(replace, text)
