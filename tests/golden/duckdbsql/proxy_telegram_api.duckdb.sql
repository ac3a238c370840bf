SELECT *
FROM websession
WHERE coalesce(lower(CAST("DstHostname" AS VARCHAR)) = lower('api.telegram.org') AND NOT coalesce(lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('%Telegram%') ESCAPE '\' OR lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('%Bot%') ESCAPE '\', false), false);
