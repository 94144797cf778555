"""Stack defaults as the template passes them to the reconciler."""

from __future__ import annotations

STACK = "tagpatch-test"
PREFIX = f"/tagpatch/{STACK}/groups/"
WINDOW_ROLE = "arn:aws:iam::123456789012:role/tagpatch-MaintenanceWindowRole"
NOTIFY_ROLE = "arn:aws:iam::123456789012:role/tagpatch-NotificationRole"
TOPIC = "arn:aws:sns:us-east-1:123456789012:tagpatch-NotificationTopic"
BUCKET = "tagpatch-output-123456789012"
RECONCILE_QUEUE = f"https://sqs.us-east-1.amazonaws.com/123456789012/{STACK}-ReconcileQueue"

RECONCILER_ENV: dict[str, str] = {
    "STACK_NAME": STACK,
    "TAG_KEY": "PatchGroup",
    "GROUPS_TABLE_NAME": "tagpatch-groups",
    "GROUP_SETTINGS_PREFIX": PREFIX,
    "DELETE_EMPTY_GROUP_WINDOWS": "false",
    "MAINTENANCE_WINDOW_ROLE_ARN": WINDOW_ROLE,
    "OUTPUT_BUCKET": BUCKET,
    "NOTIFICATION_TOPIC_ARN": TOPIC,
    "NOTIFICATION_ROLE_ARN": NOTIFY_ROLE,
    "DEFAULT_SCHEDULE": "cron(0 3 ? * SUN *)",
    "DEFAULT_SCHEDULE_TIMEZONE": "UTC",
    "DEFAULT_SCHEDULE_OFFSET": "0",
    "DEFAULT_DURATION": "4",
    "DEFAULT_CUTOFF": "1",
    "DEFAULT_PRIORITY": "1",
    "DEFAULT_MAX_CONCURRENCY": "10%",
    "DEFAULT_MAX_ERRORS": "10%",
    "DEFAULT_OPERATION": "Install",
    "DEFAULT_REBOOT_OPTION": "RebootIfNeeded",
    "DEFAULT_TIMEOUT_SECONDS": "3600",
    "DEFAULT_COMMENT": "Patched by TagPatch",
    "DEFAULT_TARGET_OWNER_INFORMATION": "TagPatch",
    "DEFAULT_OUTPUT_PREFIX": "patch-output",
    "DEFAULT_NOTIFICATION_EVENTS": "All",
    "DEFAULT_NOTIFICATION_TYPE": "Invocation",
    "DEFAULT_SCAN_SCHEDULE": "",
    "DEFAULT_PATCH_BASELINE_ID": "",
    "RECONCILE_QUEUE_URL": RECONCILE_QUEUE,
}
