-- wrong: adaptive.enabled set to sometimes
-- expect: minispark.adaptive.enabled
SET minispark.adaptive.enabled = sometimes;
