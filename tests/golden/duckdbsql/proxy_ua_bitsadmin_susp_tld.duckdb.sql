SELECT *
FROM websession
WHERE coalesce(lower(CAST("HttpUserAgent" AS VARCHAR)) LIKE lower('Microsoft BITS/%') ESCAPE '\' AND NOT coalesce(lower(CAST("DstHostname" AS VARCHAR)) LIKE lower('%.com') ESCAPE '\' OR lower(CAST("DstHostname" AS VARCHAR)) LIKE lower('%.net') ESCAPE '\' OR lower(CAST("DstHostname" AS VARCHAR)) LIKE lower('%.org') ESCAPE '\' OR lower(CAST("DstHostname" AS VARCHAR)) LIKE lower('%.scdn.co') ESCAPE '\' OR lower(CAST("DstHostname" AS VARCHAR)) LIKE lower('%.sfx.ms') ESCAPE '\', false), false);
