SELECT *
FROM websession
WHERE coalesce(lower(CAST("HttpRequestMethod" AS VARCHAR)) = lower('GET') AND (lower(CAST("Url" AS VARCHAR)) LIKE lower('%/api/Core/Command/Init') ESCAPE '\' OR lower(CAST("Url" AS VARCHAR)) LIKE lower('%/api/Core/Command/Restart') ESCAPE '\'), false);
