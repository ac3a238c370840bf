SELECT *
FROM websession
WHERE coalesce(lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('%rclone/%') ESCAPE '\' AND (lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('%-DEV%') ESCAPE '\' OR lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('%-beta.%') ESCAPE '\'), false);
