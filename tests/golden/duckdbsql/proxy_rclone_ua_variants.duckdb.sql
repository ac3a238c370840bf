SELECT *
FROM websession
WHERE coalesce((lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('rclone/%') ESCAPE '\' OR lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('APN/1.0 rclone/%') ESCAPE '\' OR lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('%|rclone/%') ESCAPE '\') AND NOT coalesce(lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('rclone/v%') ESCAPE '\', false) AND NOT coalesce(lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('%-DEV%') ESCAPE '\' OR lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('%-beta.%') ESCAPE '\', false), false);
