SELECT *
FROM websession
WHERE coalesce(lower(CAST("Url" AS VARCHAR)) LIKE lower('%.paste.ee/r/%') ESCAPE '\' OR lower(CAST("Url" AS VARCHAR)) LIKE lower('%.pastebin.com/raw/%') ESCAPE '\' OR lower(CAST("Url" AS VARCHAR)) LIKE lower('%.hastebin.com/raw/%') ESCAPE '\' OR lower(CAST("Url" AS VARCHAR)) LIKE lower('%.ghostbin.co/paste/%/raw/%') ESCAPE '\' OR lower(CAST("Url" AS VARCHAR)) LIKE lower('%pastetext.net/%') ESCAPE '\' OR lower(CAST("Url" AS VARCHAR)) LIKE lower('%pastebin.pl/%') ESCAPE '\' OR lower(CAST("Url" AS VARCHAR)) LIKE lower('%paste.ee/%') ESCAPE '\', false);
